//! YAML read with serde, a mistake placed the way compilers place them: `file:line:col: what`.

use serde::de::DeserializeOwned;

/// Parses `yaml`; on a mistake returns (place, message), the place being `origin:line:col`
/// where serde knows it.
pub(crate) fn parse<T: DeserializeOwned>(yaml: &str, origin: &str) -> Result<T, (String, String)> {
    serde_norway::from_str(yaml).map_err(|e| {
        let mut message = e.to_string();
        let place = match e.location() {
            Some(loc) => {
                // The place goes in front; drop serde's copy at the end.
                if let Some(cut) = message.rfind(" at line ") {
                    message.truncate(cut);
                }
                format!("{origin}:{}:{}", loc.line(), loc.column())
            }
            None => origin.to_string(),
        };
        (place, message)
    })
}
