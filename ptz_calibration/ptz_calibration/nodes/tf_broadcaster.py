"""/tf and /tf_static broadcasters (the parts of tf2_ros we need; tf2_ros is not available here).

QoS as tf2_ros: /tf reliable, volatile, depth 100; /tf_static reliable, transient local, depth 1,
every static transform of the node in one message (a new one replaces the old one by child frame).
One broadcaster of each kind is shared by everything in a node (:func:`for_node`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Iterable

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class TransformBroadcaster:
    """Publishes dynamic transforms on /tf."""

    def __init__(self, node: Node, topic: str = "/tf") -> None:
        self._pub = node.create_publisher(TFMessage, topic, TF_QOS)
        self._msg = TFMessage()

    def send(self, transforms: list[TransformStamped]) -> None:
        """Publish ``transforms`` in one message (the list is used as is, not copied)."""
        msg = self._msg
        msg.transforms = transforms
        self._pub.publish(msg)


class StaticTransformBroadcaster:
    """Publishes the node's static transforms on /tf_static, all of them in one latched message."""

    def __init__(self, node: Node, topic: str = "/tf_static") -> None:
        self._pub = node.create_publisher(TFMessage, topic, TF_STATIC_QOS)
        self._by_child: dict[str, TransformStamped] = {}
        self._lock = threading.Lock()

    def send(self, transforms: Iterable[TransformStamped]) -> None:
        """Add or replace ``transforms`` (by child frame) and republish the whole set."""
        with self._lock:
            for tf in transforms:
                self._by_child[tf.child_frame_id] = tf
            self._pub.publish(TFMessage(transforms=list(self._by_child.values())))

    def remove(self, child_frames: Iterable[str]) -> None:
        """Drop transforms by child frame and republish the rest."""
        with self._lock:
            for child in child_frames:
                self._by_child.pop(child, None)
            self._pub.publish(TFMessage(transforms=list(self._by_child.values())))


_shared: "weakref.WeakKeyDictionary[Node, tuple[TransformBroadcaster, StaticTransformBroadcaster]]" = \
    weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def for_node(node: Node) -> tuple[TransformBroadcaster, StaticTransformBroadcaster]:
    """The node's shared (/tf, /tf_static) broadcasters, created on first use."""
    with _shared_lock:
        pair = _shared.get(node)
        if pair is None:
            pair = (TransformBroadcaster(node), StaticTransformBroadcaster(node))
            _shared[node] = pair
        return pair
