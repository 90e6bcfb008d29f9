//! Sans-IO websocket client codec (in progress).
