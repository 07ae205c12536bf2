"""tau2's airline record models, as pydantic models of the same names, fields and types.

tau2 keeps its database in pydantic models and builds records from the agent's
arguments with them, so what a tool accepts, how it coerces (``"2"`` -> 2 for an
int field, 100 -> 100.0 for a float field, 125.0 -> 125 for an int field) and
the text of a refusal (pydantic's ``ValidationError``, with ``input_value``,
``input_type`` and the documentation link of the installed pydantic) all come
from pydantic.  Validating with pydantic models of the same shape gives the
same results and the same texts as tau2 running under the same pydantic.

Only field names, types, defaults and order matter here (the descriptions the
agent sees are read from the benchmark's own source, see
:mod:`.benchmark_schemas`).  Field order decides the key order of a dump,
hence the JSON text the agent sees.
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

FlightType = Literal["round_trip", "one_way"]
CabinClass = Literal["business", "economy", "basic_economy"]
Insurance = Literal["yes", "no"]
MembershipLevel = Literal["gold", "silver", "regular"]


class Name(BaseModel):
    first_name: str
    last_name: str


class Address(BaseModel):
    address1: str
    address2: Optional[str] = None
    city: str
    country: str
    state: str
    zip: str


class Payment(BaseModel):
    payment_id: str
    amount: int


class PaymentMethodBase(BaseModel):
    source: str
    id: str


class CreditCard(PaymentMethodBase):
    source: Literal["credit_card"]
    brand: str
    last_four: str


class GiftCard(PaymentMethodBase):
    source: Literal["gift_card"]
    amount: float
    id: str


class Certificate(PaymentMethodBase):
    source: Literal["certificate"]
    amount: float


PaymentMethod = Union[CreditCard, GiftCard, Certificate]


class Passenger(BaseModel):
    first_name: str
    last_name: str
    dob: str


class FlightDateStatusAvailable(BaseModel):
    status: Literal["available"]
    available_seats: Dict[CabinClass, int]
    prices: Dict[CabinClass, int]


class FlightDataStatusOnTime(BaseModel):
    status: Literal["on time"]
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


class FlightDataStatusFlying(BaseModel):
    status: Literal["flying"]
    actual_departure_time_est: str
    estimated_arrival_time_est: str


class FlightDateStatusLanded(BaseModel):
    status: Literal["landed"]
    actual_departure_time_est: str
    actual_arrival_time_est: str


class FlightDateStatusCancelled(BaseModel):
    status: Literal["cancelled"]


class FlightDateStatusDelayed(BaseModel):
    status: Literal["delayed"]
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


FlightDateStatus = Union[FlightDateStatusAvailable, FlightDateStatusLanded, FlightDateStatusCancelled,
                         FlightDateStatusDelayed, FlightDataStatusFlying, FlightDataStatusOnTime]


class FlightBase(BaseModel):
    flight_number: str
    origin: str
    destination: str


class Flight(FlightBase):
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str
    dates: Dict[str, FlightDateStatus]


class ReservationFlight(FlightBase):
    date: str
    price: int


class FlightInfo(BaseModel):
    flight_number: str
    date: str


class User(BaseModel):
    user_id: str
    name: Name
    address: Address
    email: str
    dob: str
    payment_methods: Dict[str, PaymentMethod]
    saved_passengers: List[Passenger]
    membership: MembershipLevel
    reservations: List[str]


class Reservation(BaseModel):
    reservation_id: str
    user_id: str
    origin: str
    destination: str
    flight_type: FlightType
    cabin: CabinClass
    flights: List[ReservationFlight]
    passengers: List[Passenger]
    payment_history: List[Payment]
    created_at: str
    total_baggages: int
    nonfree_baggages: int
    insurance: Insurance
    status: Optional[Literal["cancelled"]] = None


class FlightDB(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flights: Dict[str, Flight]
    users: Dict[str, User]
    reservations: Dict[str, Reservation]
