"""The paper's experiments (spec, section 4): memory vs context, equal memory, fine-tuning."""
