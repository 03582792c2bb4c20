"""The event bus: who is handed which event."""

from __future__ import annotations

from pxed.events import DhcpExchange, Event, EventBus, StateChanged


def exchange() -> DhcpExchange:
    return DhcpExchange(1.0, "52:54:00:12:34:56", "REQUEST", 7, "lab0", 67, "0.0.0.0:68", "ack",
                        "10.0.0.5", "ok")  # fmt: skip


class StatesOnly:
    kinds = (StateChanged,)

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


def test_a_subscriber_naming_its_kinds_is_handed_only_those() -> None:
    bus, states, every = EventBus(), StatesOnly(), list[Event]()
    bus.subscribe(states)
    bus.subscribe(every.append)
    change = StateChanged(2.0, "52:54:00:12:34:56", "ready", "booting", "dhcp")
    bus.publish(exchange())
    bus.publish(change)
    assert states.seen == [change]
    assert every == [exchange(), change]


def test_a_subscriber_added_after_events_were_published_gets_the_next_ones() -> None:
    bus, late = EventBus(), list[Event]()
    bus.publish(exchange())
    bus.subscribe(late.append)
    bus.publish(exchange())
    assert late == [exchange()]


def test_a_failing_subscriber_does_not_keep_the_event_from_the_others() -> None:
    bus, seen = EventBus(), list[Event]()

    def broken(event: Event) -> None:
        raise RuntimeError("broken")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish(exchange())
    assert seen == [exchange()]
