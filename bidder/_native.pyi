from collections.abc import Callable

from bidder.decide import Outcome
from bidder.engine import Engine
from bidder.impstep import Choice, ImpTables
from bidder.index import Index
from bidder.openrtb import BidRequest, Imp, Privacy
from bidder.targeting import Tables
from bidder.value import Context, PriceTable
from shield import Group, Holds, Pacer

class Hmac:
    """HMAC-SHA256 with the keyed states computed once (``bidder/_native.c``)."""

    def __init__(self, key: bytes) -> None: ...
    def sig(self, message: str) -> str: ...
    def query(self, bid_id: str, imp_id: str, imp_quoted: str, signed_line: str, quoted_line: str, price: str,
              cur: str, expiry: str, test: str) -> str: ...

class Writer:
    """Bid responses: one Bid object with its signed notice URLs, and the BidResponse (``bidder/_writer.c``;
    its Python twin is ``bidder.response.WriterPy``)."""

    def __init__(self, hmac: Hmac, lines: tuple[tuple[bytes, bytes, bytes], ...], seats: tuple[bytes, ...],
                 win: bytes, bill: bytes, loss: bytes, ext_tail: bytes) -> None: ...
    def bid(self, bid_id: str, imp_id: str, line: int, price: float, cur: str, expiry: str, test: str,
            deal: str | None, value_micros: int, p: float, ltv: float, source: str) -> bytes: ...
    def response(self, request_id: str, bids: list[tuple[int, bytes]], cur: str) -> bytes: ...

class RequestMask:
    """The request-level mask over the index's rows (``bidder/_targeting.c``; its Python twin is
    ``bidder.targeting.request_mask_py``)."""

    def __init__(self, index: Index, tables: Tables, context: type[Context],
                 privacy: Callable[[BidRequest], Privacy]) -> None: ...
    def of(self, req: BidRequest, now: float, live: int) -> tuple[int, Context]: ...

class ImpStep:
    """The imp step over the index's rows (``bidder/_imp.c``; its Python twin is
    ``bidder.impstep.imp_best_py``)."""

    def __init__(self, tables: ImpTables, floor_py: Callable[[dict[str, float], float, str], int | None],
                 choice: type[Choice], replace: Callable[..., Context],
                 price_table: PriceTable | None = None) -> None: ...
    def best(self, engine: Engine, req: BidRequest, imp: Imp, m: int, ctx: Context) -> tuple[Choice | None, str]: ...

class Admit:
    """The budget gate's admission (``bidder/_admit.c``; its Python twin is
    ``bidder.budget.BudgetGate.admit_py``)."""

    fast: int  # reservations held in C rather than by the Python methods

    def __init__(self, pacers: list[Pacer | None], groups: list[Group], holds: Holds, rng: Callable[[], float],
                 refused: Callable[[int], str]) -> None: ...
    def __call__(self, campaign: int, key: int, micros: int, serial: int) -> str | None: ...
    def hold(self, group: Group, key: int, amount: int, serial: int) -> bool: ...

class Decide:
    """The decision's steps joined (``bidder/_decide.c``; its Python twin is ``bidder.decide.decide_py``)."""

    def __init__(self, outcome: type[Outcome], no_bid: Outcome, from_usd: Callable[[int, float], float],
                 held: Callable[[float, float], int], admissions: int) -> None: ...
    def __call__(self, engine: Engine, req: BidRequest, cur: str) -> Outcome: ...
