"""Test support shipped with the bus: the in-memory topology test driver and its fake clock.

Import it in processor tests; it needs no broker and uses the real envelope, Avro codec and
signatures at every hop.
"""

from ._driver import FakeClock, TestInputTopic, TestOutputTopic, TopologyTestDriver

__all__ = ["FakeClock", "TestInputTopic", "TestOutputTopic", "TopologyTestDriver"]
