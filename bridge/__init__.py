"""R engine: lme4, lmerTest, pbkrtest and emmeans through rpy2."""
