"""Fleet: watch every camera publishing over MQTT (table, contact sheets, mean heatmaps) or simulate many."""
