"""IU X-Ray (Indiana University chest X-rays via NLM Open-i): ``r2gen`` (R2Gen's split, findings)
and ``rexrank`` (ReXrank's test/val sets), both read from the user's copy of the open files."""
