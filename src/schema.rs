//! JSON Schemas of the files voicesim reads and writes (a suite, a noise profile, a line of
//! `results.jsonl`), made from the very types that read and write them, so an editor or a
//! validator checks a file as voicesim will.
//!
//! ```
//! let schema = voicesim::schema::Document::Suite.schema();
//! assert_eq!(schema["title"], "Suite");
//! assert!(schema["properties"]["tests"].is_object());
//! ```

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;

use crate::noise::NoiseProfile;
use crate::report::RunResult;
use crate::suite::Suite;

/// A kind of file voicesim has a schema for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Document {
    /// A suite file (YAML).
    Suite,
    /// A noise profile file (YAML).
    Profile,
    /// One line of `results.jsonl`.
    Results,
}

impl Document {
    pub const ALL: [Document; 3] = [Document::Suite, Document::Profile, Document::Results];

    /// The file name the schema is published under (`docs/schemas/`).
    pub fn file_name(self) -> &'static str {
        match self {
            Document::Suite => "suite.schema.json",
            Document::Profile => "profile.schema.json",
            Document::Results => "results.schema.json",
        }
    }

    /// The schema (JSON Schema 2020-12): of what voicesim accepts for the files it reads, of
    /// what it writes for `results.jsonl`.
    pub fn schema(self) -> serde_json::Value {
        match self {
            Document::Suite => reading::<Suite>(),
            Document::Profile => reading::<NoiseProfile>(),
            Document::Results => writing::<RunResult>(),
        }
    }

    /// The schema as published: pretty-printed, ending in a newline.
    pub fn text(self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema()).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// What voicesim accepts when it reads a `T`.
fn reading<T: JsonSchema>() -> serde_json::Value {
    schema_of::<T>(SchemaSettings::draft2020_12().for_deserialize())
}

/// What voicesim writes when it writes a `T`.
fn writing<T: JsonSchema>() -> serde_json::Value {
    schema_of::<T>(SchemaSettings::draft2020_12().for_serialize())
}

fn schema_of<T: JsonSchema>(settings: SchemaSettings) -> serde_json::Value {
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// A map of YAML scalars read as text: voicesim takes `order: 4521` as it takes `"4521"`.
pub(crate) fn scalar_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}

/// A YAML scalar read as text (`dtmf: 1234` is the keys "1234"), or nothing.
pub(crate) fn scalar_text(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": ["string", "number", "null"] })
}
