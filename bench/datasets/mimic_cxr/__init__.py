"""MIMIC-CXR 2.0.0 (PhysioNet, credentialed): ``official`` (the official split, findings) and
``rexrank`` (ReXrank's test set), both prepared locally from the user's PhysioNet copy."""
