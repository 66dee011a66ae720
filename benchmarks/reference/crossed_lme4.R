# lme4 reference for the crossed benchmark model (benchmarks/cases.py simulate_crossed, written
# to CSV with: python -c "from benchmarks.cases import simulate_crossed; simulate_crossed().to_csv('/tmp/crossed.csv', index=False)").
# Run: Rscript benchmarks/reference/crossed_lme4.R  (R and lme4 from Debian: apt-get install r-cran-lme4)
suppressMessages(library(lme4))
d <- read.csv("/tmp/crossed.csv")
t <- system.time(m <- lmer(y ~ x + (1 | a) + (1 | b), data = d))
vc <- as.data.frame(VarCorr(m))
cat(sprintf("lme4 %s seconds %.2f\n", packageVersion("lme4"), t[["elapsed"]]))
print(vc[, c("grp", "sdcor")])
print(fixef(m))
