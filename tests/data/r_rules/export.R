# Exports the data sets of tests/test_r_rules.py (issue 14, data and formula rules) from R 4.2's
# nlme and datasets packages: Rscript tests/data/r_rules/export.R (from the repository root).
library(nlme)
out <- "tests/data/r_rules"
# nlme::Alfalfa: Date has a real level "None".
write.csv(as.data.frame(Alfalfa), file.path(out, "alfalfa.csv"), row.names = FALSE)
# nlme::Oats with Block as an integer (I..VI -> 1..6) and nitro as a factor copy nitroF.
oats <- as.data.frame(Oats)
oats$Block <- match(as.character(oats$Block), c("I", "II", "III", "IV", "V", "VI"))
oats$Variety <- as.character(oats$Variety)
oats$nitroF <- paste0("n", oats$nitro)
write.csv(oats, file.path(out, "oats.csv"), row.names = FALSE)
# nlme::Orthodont with a logical column male.
orth <- as.data.frame(Orthodont)
orth$Subject <- as.character(orth$Subject)
orth$Sex <- as.character(orth$Sex)
orth$male <- orth$Sex == "Male"
write.csv(orth, file.path(out, "orthodont.csv"), row.names = FALSE)
# datasets::CO2.
co2 <- as.data.frame(CO2)
for (v in c("Plant", "Type", "Treatment")) co2[[v]] <- as.character(co2[[v]])
write.csv(co2, file.path(out, "co2.csv"), row.names = FALSE)
