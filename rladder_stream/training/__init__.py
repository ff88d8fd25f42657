"""Training: :mod:`.tasks` (what a model trains and is evaluated on), :mod:`.train` (the loop), :mod:`.settings`
(the settings in groups), :mod:`.losses`, :mod:`.metrics` (AMI), :mod:`.mean_teacher`, :mod:`.run_folder`
(resuming) and :mod:`.flops` (FLOPs and the device's peak, docs/design.md#counting-against-the-limit). A room of
the layout (docs/design.md#the-layout): it imports streaming (the checkpoint format), the model, the environments
and the base modules."""
