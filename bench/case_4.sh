#!/bin/sh
# case_4.sh - Dirichlet regression (common parametrisation) of the study's
# three time shares on the 461-rep data, fitted REPS times: blackhole's
# `fit --family dirichlet` (per fit, including process start and CSV read)
# vs the same model in R by maximum likelihood with the analytic gradient
# (optim BFGS; DirichletReg is not packaged in Debian).  Markdown on
# stdout; run by bench/run.sh.
set -eu
. "$BENCH_DIR/lib.sh"
K=${CASE4_FITS:-50}
mkdir -p "$WORK/c4"
"$BH_BIN" generate --study analysis/sabnis2013.ini --out "$WORK/c4" >/dev/null 2>&1
F="$WORK/c4/reps.csv"
FORMULA='share_marketing + share_self + share_other ~ experience * (prequal1 + tracking1 + lead_volume) + performance * (prequal1 + tracking1 + lead_volume) + firm'

cat > "$WORK/c4_bh.sh" <<SH
#!/bin/sh
i=0
while [ \$i -lt $K ]; do
    "$BH_BIN" fit "$F" -m '$FORMULA' --family dirichlet --format json > "$WORK/c4_bh.json" || exit 1
    i=\$((i + 1))
done
awk '/"log_likelihood"/ { gsub(/[,]/, "", \$2); print "loglik", \$2 }' "$WORK/c4_bh.json"
SH
chmod +x "$WORK/c4_bh.sh"
measure c4_bh "$WORK/c4_bh.sh" >&2

if have_r; then
    cat > "$WORK/c4.R" <<RS
d <- read.csv("$F")
d <- d[complete.cases(d), ]
X <- model.matrix(~ experience * (prequal1 + tracking1 + lead_volume) +
                  performance * (prequal1 + tracking1 + lead_volume) + firm, d)
Y <- as.matrix(d[, c("share_marketing", "share_self", "share_other")])
lY <- log(Y); p <- ncol(X); K <- 3
nll <- function(b) { A <- exp(X %*% matrix(b, p, K)); S <- rowSums(A)
  -sum(lgamma(S) - rowSums(lgamma(A)) + rowSums((A - 1) * lY)) }
gr <- function(b) { A <- exp(X %*% matrix(b, p, K)); S <- rowSums(A)
  U <- A * (digamma(S) - digamma(A) + lY); -as.vector(crossprod(X, U)) }
st <- rep(0, p * K); st[(0:(K - 1)) * p + 1] <- log(10 * colMeans(Y))  # intercepts: alpha = 10 mean share
t0 <- proc.time()[["elapsed"]]
for (i in 1:$K) o <- optim(st, nll, gr, method = "BFGS",
                           control = list(reltol = 1e-12, maxit = 5000))
cat("loglik", -o\$value, "\n")
RS
    measure c4_r "$RSCRIPT" "$WORK/c4.R" >&2
fi

bh=$(get "$WORK/c4_bh.med" wall)
r=$(get "$WORK/c4_r.med" wall)
per() { awk -v a="$1" -v k="$K" 'BEGIN { if (a == "NA") print "NA"; else printf "%.4f\n", a / k }'; }
cat <<MD
## Case 4: Dirichlet regression, 461 reps, $K fits

\`$FORMULA\` (common parametrisation, K = 3 components, p = 15), fitted $K times.
blackhole: \`blackhole fit --family dirichlet\` per fit, including process start and CSV read;
R: maximum likelihood with the analytic gradient (\`optim\` BFGS, reltol 1e-12), model only.

| tool | total wall (s) | per fit (s) | log-likelihood |
|---|---|---|---|
| blackhole | $(fmt "$bh") | $(per "$bh") | $(get "$WORK/c4_bh.med" loglik) |
| R (optim) | $(fmt "$r") | $(per "$r") | $(get "$WORK/c4_r.med" loglik) |

Ratio R / blackhole: $(ratio "$r" "$bh"). R's time includes starting R once (about 0.3 s); a
lower R log-likelihood means BFGS stopped before the maximum (blackhole polishes with Newton
steps on the analytic Hessian).

MD
