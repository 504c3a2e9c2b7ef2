"""A tiny, fully explicit training config shared by the reliability tests: no "auto"
values (a resumed child needs no data statistics), a checkpoint every 10 steps and 5
steps per compiled call, so faults land in every phase of the loop. The loop is under test,
not the recipe: the default preset's second-order term (a forward-mode product that adds
~10 s of compile time per program) is left out."""


def tiny_toml(steps: int) -> str:
    return f"""
width = 16
depth = 1
n_features = 8
batch_size = 32
steps = {steps}
steps_per_call = 5
log_every = 5
checkpoint_every = 10
sigma_max = 10.0
sigma_min = 0.05
centre = [0.0, 0.0]
second_order = 0.0
"""
