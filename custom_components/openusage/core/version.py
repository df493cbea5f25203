"""The release of openusage-ha: the publisher's MQTT origin, the package and (checked by a test) the manifest."""

VERSION = "0.1.0"
