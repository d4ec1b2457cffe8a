//! `{{...}}` tag scanning (fasttemplate rules, as Argo uses them), single-pass substitution
//! and reference extraction.

use super::{ExprError, Unresolved, Vars, eval, scan};

/// One tag as found in the text: `start..end` covers the whole `{{...}}`; `body` is what is
/// between the braces.
struct RawTag<'a> {
    start: usize,
    end: usize,
    body: &'a str,
}

/// Split like fasttemplate: a tag runs from a `{{` to the FIRST following `}}`.
fn scan_tags(text: &str) -> Result<Vec<RawTag<'_>>, ExprError> {
    let mut tags = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find("{{") {
        let start = pos + i;
        let body_start = start + 2;
        let Some(j) = text[body_start..].find("}}") else {
            return Err(ExprError::UnclosedTag {
                offset: start,
                text: text.to_string(),
            });
        };
        let end = body_start + j + 2;
        tags.push(RawTag {
            start,
            end,
            body: &text[body_start..body_start + j],
        });
        pos = end;
    }
    Ok(tags)
}

/// Replace every `{{name}}` and `{{=expr}}` tag in one pass; substituted text is never
/// scanned again. A simple tag renders strings as is and other values as compact JSON; an
/// expression renders like Go's `fmt.Sprintf("%v")` (a float 3 is `3`).
///
/// With [`Unresolved::Leave`] an unknown variable, or an expression that fails or yields
/// nil, leaves the tag text untouched (Argo's `allowUnresolved`); with
/// [`Unresolved::Error`] it is an error naming the tag or expression.
pub fn substitute(text: &str, vars: &Vars, unresolved: Unresolved) -> Result<String, ExprError> {
    let tags = scan_tags(text)?;
    if tags.is_empty() {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for tag in tags {
        out.push_str(&text[last..tag.start]);
        last = tag.end;
        if let Some(expr) = tag.body.strip_prefix('=') {
            match eval::render_expression(expr, vars, unresolved) {
                Ok(Some(s)) => out.push_str(&s),
                Ok(None) => out.push_str(&text[tag.start..tag.end]),
                Err(e) => return Err(e),
            }
            continue;
        }
        let name = tag.body.trim();
        if let Some(s) = vars.render(name) {
            out.push_str(&s);
            continue;
        }
        // Argo: `{{ {{x}}`-style nesting resolves the innermost tag and keeps the prefix.
        if let Some(idx) = tag.body.rfind("{{").filter(|&i| i > 0)
            && let Some(s) = vars.render(&tag.body[idx + 2..])
        {
            out.push_str("{{");
            out.push_str(&tag.body[..idx]);
            out.push_str(&s);
            continue;
        }
        match unresolved {
            Unresolved::Leave => out.push_str(&text[tag.start..tag.end]),
            Unresolved::Error => {
                return Err(ExprError::Unresolved {
                    tag: tag.body.to_string(),
                });
            }
        }
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// What a tag is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKind {
    /// `{{ name }}`: the trimmed variable name.
    Simple { name: String },
    /// `{{=expr}}`: the expression and the variable paths it reads, in order of first
    /// appearance (`inputs.parameters.x`, `inputs.parameters.my-param` for
    /// `inputs.parameters['my-param']`, `item`...). Function names, literals, `#` and
    /// `let`-bound names are not reported.
    Expression { expr: String, paths: Vec<String> },
}

/// One `{{...}}` tag: byte offsets `start..end` cover the braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    pub start: usize,
    pub end: usize,
    pub kind: TagKind,
}

/// List every tag in `text` for lint. An unclosed `{{` is an error
/// ([`ExprError::UnclosedTag`]); expressions are not syntax-checked here (see
/// [`super::check_expression`]).
pub fn references(text: &str) -> Result<Vec<TagRef>, ExprError> {
    Ok(scan_tags(text)?
        .into_iter()
        .map(|t| TagRef {
            start: t.start,
            end: t.end,
            kind: match t.body.strip_prefix('=') {
                Some(e) => TagKind::Expression {
                    expr: e.to_string(),
                    paths: scan::paths(e),
                },
                None => TagKind::Simple {
                    name: t.body.trim().to_string(),
                },
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("inputs.parameters.message", "hello");
        v.insert("workflow.name", "wf-1");
        v.insert("evil", "{{workflow.name}} $(rm -rf /)");
        v.insert("evil2", "{{=workflow.name}}");
        v.insert("item", json!({"name": "jesse", "n": 2}));
        v.insert("retries", "3");
        v
    }

    #[test]
    fn simple_and_whitespace() {
        let v = vars();
        assert_eq!(
            substitute(
                "say {{inputs.parameters.message}} to {{ workflow.name }}!",
                &v,
                Unresolved::Error
            )
            .unwrap(),
            "say hello to wf-1!"
        );
        assert_eq!(
            substitute("{{\tretries\n}}", &v, Unresolved::Error).unwrap(),
            "3"
        );
        assert_eq!(
            substitute("no tags", &v, Unresolved::Error).unwrap(),
            "no tags"
        );
        assert_eq!(substitute("", &v, Unresolved::Error).unwrap(), "");
        assert_eq!(
            substitute("a } b }} c", &v, Unresolved::Error).unwrap(),
            "a } b }} c"
        );
    }

    #[test]
    fn single_pass() {
        let v = vars();
        assert_eq!(
            substitute("{{evil}}", &v, Unresolved::Error).unwrap(),
            "{{workflow.name}} $(rm -rf /)"
        );
        assert_eq!(
            substitute("{{evil2}}", &v, Unresolved::Error).unwrap(),
            "{{=workflow.name}}"
        );
        assert_eq!(
            substitute("{{=evil}}", &v, Unresolved::Error).unwrap(),
            "{{workflow.name}} $(rm -rf /)"
        );
    }

    #[test]
    fn item_maps() {
        let v = vars();
        assert_eq!(
            substitute("{{item.name}}-{{item.n}}", &v, Unresolved::Error).unwrap(),
            "jesse-2"
        );
        assert_eq!(
            substitute("{{item}}", &v, Unresolved::Error).unwrap(),
            r#"{"name":"jesse","n":2}"#
        );
        assert_eq!(
            substitute("{{=item.name + '!'}}", &v, Unresolved::Error).unwrap(),
            "jesse!"
        );
        // Argo flattens map items to strings.
        assert_eq!(
            substitute("{{=item.n}}", &v, Unresolved::Error).unwrap(),
            "2"
        );
        assert_eq!(
            substitute("{{=asInt(item.n) + 1}}", &v, Unresolved::Error).unwrap(),
            "3"
        );
    }

    #[test]
    fn leave_vs_error() {
        let v = vars();
        let t = "a {{inputs.parameters.x}} b {{ steps.s.outputs.result }}";
        assert_eq!(substitute(t, &v, Unresolved::Leave).unwrap(), t);
        assert_eq!(
            substitute(t, &v, Unresolved::Error)
                .unwrap_err()
                .to_string(),
            "failed to resolve {{inputs.parameters.x}}"
        );
        let t = "{{=inputs.parameters.x}} {{workflow.name}}";
        assert_eq!(
            substitute(t, &v, Unresolved::Leave).unwrap(),
            "{{=inputs.parameters.x}} wf-1"
        );
        let t = "{{=asInt(nope) + 1}}";
        assert_eq!(substitute(t, &v, Unresolved::Leave).unwrap(), t);
        assert!(matches!(
            substitute(t, &v, Unresolved::Error).unwrap_err(),
            ExprError::Evaluation { .. }
        ));
        // workflow.status absent: Argo waits for exit handlers instead of comparing to nil.
        let t = "{{=workflow.status == 'Succeeded'}}";
        assert_eq!(substitute(t, &v, Unresolved::Leave).unwrap(), t);
    }

    #[test]
    fn nested_tag() {
        let v = vars();
        assert_eq!(
            substitute("{{ {{workflow.name}}", &v, Unresolved::Error).unwrap(),
            "{{ wf-1"
        );
    }

    #[test]
    fn unclosed() {
        let v = vars();
        let e = substitute("ok {{workflow.name", &v, Unresolved::Leave).unwrap_err();
        assert_eq!(
            e,
            ExprError::UnclosedTag {
                offset: 3,
                text: "ok {{workflow.name".into()
            }
        );
        assert!(references("{{a}} {{b").is_err());
    }

    #[test]
    fn references_list() {
        let r = references("x {{ a.b }} {{=asInt(inputs.parameters['my-param']) + len(item.xs)}}")
            .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            TagRef {
                start: 2,
                end: 11,
                kind: TagKind::Simple { name: "a.b".into() }
            }
        );
        assert_eq!(r[1].start, 12);
        assert_eq!(r[1].end, 68);
        assert_eq!(
            r[1].kind,
            TagKind::Expression {
                expr: "asInt(inputs.parameters['my-param']) + len(item.xs)".into(),
                paths: vec!["inputs.parameters.my-param".into(), "item.xs".into()]
            }
        );
    }
}
