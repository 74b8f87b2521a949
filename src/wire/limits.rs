//! Limits of the wire layer, each with its reason. A config file may tighten them, never lift them.

/// Longest service, bus or node name: names are identifiers, 64 bytes is ample and keeps a
/// service id frame small (tag + u16 + 64 = 67 bytes).
pub const MAX_SERVICE_NAME: usize = 64;

/// Longest human-readable text (progress, failure messages, endpoints): 4 KiB. Free text from a
/// peer or client is for logs and people, never for bulk data.
pub const MAX_TEXT: usize = 4096;

/// Most items in a list inside an API message (services, endpoints): 1,024. A node runs a few
/// dozen services; the cap bounds decoding work to ~1,024 x (8 + 2 x 4 KiB) bytes at worst,
/// which the frame size limit of the bus (bus::limits) bounds further.
pub const MAX_LIST: usize = 1024;
