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


# Appended to tiny_toml by the tests of the loop and of the command line's handling of faults:
# the random-feature network instead of a preset's grid network (three to five feature
# grids; the "default" preset's finest is 128 x 128), which a process builds, traces and
# steps in a fraction of the time (a warm child of the SIGKILL test: 5.9 -> 4.7 CPU s).
# What these tests check (checkpoints, SIGKILL, locks, refusals, resumes) is the loop's and
# the command line's, the same for every network. With this network a signal often landed in
# JAX's gc callback, where Python drops the handler's exception: the child trained on and
# ignored every later signal (2026-12-02; fixed in scorefield.cli.handle_signals, tested in
# test_reliability_signals.py), so the signal tests use it too.
SIGMA_NET = 'net = "sigma"\n'
