# ref_r.R - the R side of bench/run.sh (reference timings; R is optional).
#
# Usage: Rscript bench/ref_r.R MODE FILE COEF_OUT
#   logit_e2e  fread + glm(binomial) + sandwich::vcovCL(cluster = ~id,
#              type = "HC0", cadjust = TRUE)   (what a researcher runs)
#   logit_mem  the data already in memory: model.matrix, then glm.fit on
#              the pre-built matrix (R's IRLS alone), and vcovCL on a glm
#              object, each timed separately
#   ols_e2e    fread + lm + sandwich::vcovHC(type = "HC1")
#   ols_mem    model.matrix, lm.fit on the pre-built matrix, vcovHC
#   ingest     fread only
# Prints "key seconds" lines; writes term,estimate,std_error to COEF_OUT.
# glm uses R's defaults (epsilon = 1e-8): the tolerance researchers run with.
suppressPackageStartupMessages({
    library(data.table)
    library(sandwich)
})
args <- commandArgs(trailingOnly = TRUE)
mode <- args[1]; file <- args[2]; out <- args[3]
el <- function(t0) unname((proc.time() - t0)["elapsed"])
say <- function(key, v) cat(sprintf("%s %.4f\n", key, v))
logit_f <- y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x1:x2
ols_f <- as.formula(paste("y ~", paste0("x", 1:20, collapse = " + ")))
write_coef <- function(b, V) {
    fwrite(data.table(term = names(b), estimate = sprintf("%.17g", b),
                      std_error = sprintf("%.17g", sqrt(diag(V)))),
           out, quote = FALSE)
}

t0 <- proc.time()
dt <- fread(file, showProgress = FALSE)
say("t_read", el(t0))
cat(sprintf("fread_threads %d\n", getDTthreads()))

if (mode == "logit_e2e") {
    t0 <- proc.time()
    m <- glm(logit_f, family = binomial(), data = dt)
    say("t_fit", el(t0))
    cat(sprintf("iters %d\n", m$iter))
    t0 <- proc.time()
    V <- vcovCL(m, cluster = ~id, type = "HC0", cadjust = TRUE)
    say("t_vcov", el(t0))
    write_coef(coef(m), V)
} else if (mode == "logit_mem") {
    t0 <- proc.time()
    X <- model.matrix(logit_f, data = dt)
    say("t_design", el(t0))
    y <- dt$y
    t0 <- proc.time()
    g <- glm.fit(X, y, family = binomial())
    say("t_irls", el(t0))
    cat(sprintf("iters %d\n", g$iter))
    m <- glm(logit_f, family = binomial(), data = dt)
    t0 <- proc.time()
    V <- vcovCL(m, cluster = ~id, type = "HC0", cadjust = TRUE)
    say("t_vcov", el(t0))
    write_coef(coef(g), V)
} else if (mode == "ols_e2e") {
    t0 <- proc.time()
    m <- lm(ols_f, data = dt)
    say("t_fit", el(t0))
    t0 <- proc.time()
    V <- vcovHC(m, type = "HC1")
    say("t_vcov", el(t0))
    write_coef(coef(m), V)
} else if (mode == "ols_mem") {
    t0 <- proc.time()
    X <- model.matrix(ols_f, data = dt)
    say("t_design", el(t0))
    y <- dt$y
    t0 <- proc.time()
    l <- lm.fit(X, y)
    say("t_fit", el(t0))
    m <- lm(ols_f, data = dt)
    t0 <- proc.time()
    V <- vcovHC(m, type = "HC1")
    say("t_vcov", el(t0))
    write_coef(coef(l), V)
} else if (mode == "ingest") {
    cat(sprintf("rows %d\ncols %d\n", nrow(dt), ncol(dt)))
} else {
    stop("unknown mode ", mode)
}
