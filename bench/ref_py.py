"""ref_py.py - the Python side of bench/run.sh (statsmodels; optional).

Usage: python3 bench/ref_py.py MODE FILE COEF_OUT
  logit_e2e  pandas.read_csv + statsmodels formula GLM(Binomial)
             .fit(cov_type="cluster", groups=id)
  logit_mem  patsy design, then GLM.fit on the pre-built arrays (IRLS)
             and the cluster covariance, each timed separately
  ols_e2e    read_csv + formula OLS .fit(cov_type="HC1")
  ols_mem    patsy design, OLS.fit on the arrays, HC1 covariance
  ingest     read_csv only
Prints "key seconds" lines; writes term,estimate,std_error to COEF_OUT.

statsmodels' cluster correction is G/(G-1) (N-1)/(N-K) (its Stata-style
default); the library's and R's vcovCL(type = "HC0", cadjust = TRUE) use
G/(G-1).  The written standard errors are rescaled by sqrt((N-K)/(N-1)) so
the agreement check compares the same estimator (a 5e-6 effect here).
"""
import sys
import time

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
import statsmodels.formula.api as smf

mode, path, out = sys.argv[1:4]
LOGIT_F = "y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x1:x2"
OLS_F = "y ~ " + " + ".join(f"x{j}" for j in range(1, 21))


def say(key, v):
    print(f"{key} {v:.4f}", flush=True)


def write_coef(names, b, se):
    with open(out, "w") as f:
        f.write("term,estimate,std_error\n")
        for n, e, s in zip(names, b, se):
            n = "(Intercept)" if n == "Intercept" else n
            f.write(f"{n},{e:.17g},{s:.17g}\n")


def cluster_rescale(res):
    n, k = res.nobs, len(res.params)
    return np.sqrt((n - k) / (n - 1))


t = time.perf_counter()
df = pd.read_csv(path)
say("t_read", time.perf_counter() - t)

if mode == "logit_e2e":
    t = time.perf_counter()
    res = smf.glm(LOGIT_F, data=df, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": df["id"].to_numpy()})
    say("t_fit", time.perf_counter() - t)
    print(f"iters {res.fit_history['iteration']}")
    write_coef(res.params.index, res.params.values,
               res.bse.values * cluster_rescale(res))
elif mode == "logit_mem":
    t = time.perf_counter()
    y, X = patsy.dmatrices(LOGIT_F, df, return_type="dataframe")
    say("t_design", time.perf_counter() - t)
    yv, Xv, g = y.to_numpy().ravel(), X.to_numpy(), df["id"].to_numpy()
    t = time.perf_counter()
    res = sm.GLM(yv, Xv, family=sm.families.Binomial()).fit()
    t_irls = time.perf_counter() - t
    say("t_irls", t_irls)
    print(f"iters {res.fit_history['iteration']}")
    # GLM results have no public way to add a cluster covariance after the
    # fit: fit again with it and take the difference as the vcov time.
    t = time.perf_counter()
    rc = sm.GLM(yv, Xv, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": g})
    say("t_vcov", max(0.0, time.perf_counter() - t - t_irls))
    write_coef(X.columns, rc.params, rc.bse * cluster_rescale(rc))
elif mode == "ols_e2e":
    t = time.perf_counter()
    res = smf.ols(OLS_F, data=df).fit(cov_type="HC1")
    say("t_fit", time.perf_counter() - t)
    write_coef(res.params.index, res.params.values, res.bse.values)
elif mode == "ols_mem":
    t = time.perf_counter()
    y, X = patsy.dmatrices(OLS_F, df, return_type="dataframe")
    say("t_design", time.perf_counter() - t)
    yv, Xv = y.to_numpy().ravel(), X.to_numpy()
    t = time.perf_counter()
    res = sm.OLS(yv, Xv).fit()
    say("t_fit", time.perf_counter() - t)
    t = time.perf_counter()
    rc = res.get_robustcov_results(cov_type="HC1")
    say("t_vcov", time.perf_counter() - t)
    write_coef(X.columns, rc.params, rc.bse)
elif mode == "ingest":
    print(f"rows {df.shape[0]}\ncols {df.shape[1]}")
else:
    sys.exit(f"unknown mode {mode}")
