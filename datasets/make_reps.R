# make_reps.R - the small rep-level data set shipped with blackhole until
# `blackhole generate` (the study's own data-generating process) replaces it.
# Every number below is an ASSUMPTION chosen to give the published sign
# pattern of Sabnis et al. (2013); nothing here is an estimate from the paper.
#   Rscript datasets/make_reps.R   (R 4.2.2; writes datasets/reps.csv)
set.seed(20130101)
n <- 461
firms <- c("alpha", "beta", "gamma", "delta")
firm <- sample(firms, n, replace = TRUE, prob = c(0.30, 0.25, 0.25, 0.20))
fi <- match(firm, firms)
experience <- round(rgamma(n, shape = 2.2, scale = 3.5), 1)          # years, skewed
performance <- round(rnorm(n, 100, 18), 1)                           # % of quota
lead_volume <- rpois(n, 18 + c(0, 4, -3, 2)[fi])                     # leads / month
likert <- function(latent) pmin(7, pmax(1, round(4 + 1.2 * latent + rnorm(length(latent), 0, 0.8))))
pq_latent <- rnorm(n, c(0.3, -0.2, 0.1, -0.3)[fi], 1)
tr_latent <- rnorm(n, c(-0.2, 0.4, 0.0, 0.2)[fi], 1)
prequal1 <- likert(pq_latent); prequal2 <- likert(pq_latent); prequal3 <- likert(pq_latent)
tracking1 <- likert(tr_latent); tracking2 <- likert(tr_latent); tracking3 <- likert(tr_latent)
pq <- (prequal1 + prequal2 + prequal3) / 3
tr <- (tracking1 + tracking2 + tracking3) / 3
ce <- experience - mean(experience); cp <- (performance - mean(performance)) / 10
cq <- pq - mean(pq); ct <- tr - mean(tr); cv <- (lead_volume - mean(lead_volume)) / 5
eta <- -0.9 - 0.06 * ce - 0.15 * cp + 0.30 * cq + 0.05 * ct + 0.05 * cv +
       0.04 * ce * cq - 0.05 * ce * ct - 0.04 * ce * cv + 0.08 * cp * cv - 0.08 * cp * ct +
       c(0, 0.1, -0.1, 0.05)[fi]
phi <- 40
mu_m <- plogis(eta); mu_s <- (1 - mu_m) * 0.55; mu_o <- 1 - mu_m - mu_s
g <- cbind(rgamma(n, phi * mu_m), rgamma(n, phi * mu_s), rgamma(n, phi * mu_o))
sh <- round(g / rowSums(g), 4)
sh[, 3] <- round(1 - sh[, 1] - sh[, 2], 4)
d <- data.frame(rep_id = sprintf("R%03d", 1:n), firm, experience, performance, lead_volume,
                prequal1, prequal2, prequal3, tracking1, tracking2, tracking3,
                share_marketing = sh[, 1], share_self = sh[, 2], share_other = sh[, 3])
# a few missing survey answers, as real surveys have
d$performance[c(17, 203, 388)] <- NA
d$tracking2[c(45, 310)] <- NA
write.csv(d, "datasets/reps.csv", row.names = FALSE, na = "", quote = FALSE)
