"""Run one node in an executor until Ctrl-C or an external shutdown (the body of every ``main``)."""

from __future__ import annotations

from typing import Callable, Optional

import rclpy
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], make_executor: Callable[[], Executor],
             args: Optional[list[str]] = None) -> int:
    """Init rclpy, build the node and spin it; always destroy the node and shut rclpy down."""
    rclpy.init(args=args)
    node = None
    executor = None
    try:
        node = make_node()
        executor = make_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:  # stop the worker threads before the node goes away
            executor.shutdown(timeout_sec=2.0)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
