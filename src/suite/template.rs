use std::collections::BTreeMap;

/// Renders a minijinja template (`{{ order }}`) with `vars`. An undefined variable is an
/// error, not an empty string: a typo in a suite must not turn into a silent test.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(template.to_string());
    }
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(template, vars).map_err(|e| {
        let mut message = format!("template {template:?}: {}", e.kind());
        if let Some(detail) = e.detail() {
            message.push_str(&format!(": {detail}"));
        }
        if matches!(e.kind(), minijinja::ErrorKind::UndefinedError) {
            let defined: Vec<&str> = vars.keys().map(String::as_str).collect();
            message.push_str(&format!(
                " (defined here: {}; add it to the test's inputs)",
                if defined.is_empty() {
                    "nothing".into()
                } else {
                    defined.join(", ")
                }
            ));
        }
        message
    })
}
