"""The openusage-ha core: reads an openusage store and computes every figure.

It knows nothing of Home Assistant or MQTT. Installed on its own (`pip install .`) it is the
`openusage_ha` package behind the `openusage-ha` command; inside Home Assistant it is
`custom_components.openusage.core`.
"""
