"""What several scorers share: the CheXpert label set and class codes (``labels``) and the F1
computed from label codes (``label_f1``), so the CheXbert and the rule labeler score alike."""
