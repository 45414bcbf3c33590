"""CheXpert Plus (Stanford AIMI, research-use agreement): ``rexrank``, CheXpert's ``valid/`` studies
as ReXrank scores them, prepared locally from the user's copy."""
