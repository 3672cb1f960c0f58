"""Learned value models: customer LTV (BG/NBD x Gamma-Gamma) and conversion probability (FTRL).

Serving API (what the bidder uses)::

    model = load_model(ctr_artefact, ltv_artefact=None, users=None)   # -> ValueModel, raises ModelError
    warm_up()                                                          # compile kernels at start
    scorer = model.bind(lines); scorer.values(cand, n, ctx, out); scorer.explain(line, ctx)
    line = scorer.best(bits, ctx, floor, first_price, shade, out)    # the engine's fused path (BestScorer)

Modules, one idea each: ``hyp2f1`` (Gauss hypergeometric), ``bgnbd``, ``gammagamma``, ``ltv``,
``transactions`` (raw purchases -> RFM summaries), ``users`` (user-value table), ``features``
(hashing), ``ctr`` (FTRL), ``events`` (event log format), ``simulate`` (ground-truth world),
``metrics``, ``artefact`` (versioned files), ``learned`` (the ValueModel), ``cli``.

Errors::

    ValueError
    └── ModelError            names the file (or part) and the problem; operator_error for the CLI
        ├── ArtefactError     missing, corrupt, truncated, incompatible format or kind
        ├── DataError         unparsable transactions, users file or event log (with the line)
        └── FitError          maximum likelihood did not give a usable model
"""

from bidder.models.artefact import Artefact, load_artefact, save_artefact
from bidder.models.errors import ArtefactError, DataError, FitError, ModelError
from bidder.models.learned import LearnedModel, load_ltv, load_model, warm_up
from bidder.models.users import UserTable, load_users

__all__ = [
    "Artefact",
    "ArtefactError",
    "DataError",
    "FitError",
    "LearnedModel",
    "ModelError",
    "UserTable",
    "load_artefact",
    "load_ltv",
    "load_model",
    "load_users",
    "save_artefact",
    "warm_up",
]
