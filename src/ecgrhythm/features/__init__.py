"""Hand-made features of a record's rhythm and beats (`rhythm`): R-R irregularity and entropy, premature beats,
atrial activity before the QRS, averaged-beat morphology and signal quality, for models beside the networks."""
