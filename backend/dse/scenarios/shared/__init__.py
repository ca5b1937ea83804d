"""Parts several kinds use: the cluster description (training, plan_search), accelerator presets
turned into the engines' device model. Kinds import from here, never from each other."""
