"""``ratescore``: RaTEScore (entity-aware report similarity), equal to the ``ratescore`` 0.6.0
package; definition and parity evidence in CARD.md."""
