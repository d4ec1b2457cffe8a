//! A light lexical scan of expr-lang source, for what expr-lang's public API does not
//! expose: the variable paths an expression reads, and rewriting `sprig.f(` calls into
//! registered functions (expr-lang only dispatches method calls to temporal values).

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(String),
    Punct(&'a str),
    Other,
}

struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
}

const KEYWORDS: &[&str] = &[
    "true",
    "false",
    "nil",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "let",
    "if",
    "else",
];

/// Prefix the rewritten sprig functions carry inside expr-lang.
pub(crate) const SPRIG_PREFIX: &str = "__sprig_";

fn lex(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(b.len(), |n| i + n);
            continue;
        }
        if src[i..].starts_with("/*") {
            i = src[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
            continue;
        }
        if c == b'\'' || c == b'"' || c == b'`' {
            let mut val = String::new();
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = src[i..].chars().next().unwrap_or('\0');
                val.push(ch);
                i += ch.len_utf8().max(1);
            }
            i = (i + 1).min(b.len());
            out.push(Token {
                tok: Tok::Str(val),
                start,
                end: i,
            });
            continue;
        }
        if c == b'#' || c == b'$' || c == b'_' || c.is_ascii_alphabetic() {
            i += 1;
            while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(&src[start..i]),
                start,
                end: i,
            });
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                if b[i] == b'.' && b.get(i + 1) == Some(&b'.') {
                    break;
                }
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other,
                start,
                end: i,
            });
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let len = if ["?.", "??", "==", "!=", "<=", ">=", "&&", "||", "..", "**"].contains(&two) {
            2
        } else {
            src[i..].chars().next().map_or(1, char::len_utf8)
        };
        i += len;
        out.push(Token {
            tok: Tok::Punct(&src[start..i]),
            start,
            end: i,
        });
    }
    out
}

fn is_punct(t: Option<&Token<'_>>, p: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(x), .. }) if *x == p)
}

/// Variable paths an expression reads, deduplicated in order of first appearance.
pub(crate) fn paths(src: &str) -> Vec<String> {
    let toks = lex(src);
    let mut lets: Vec<&str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Tok::Ident(name) = toks[i].tok else {
            i += 1;
            continue;
        };
        let prev = if i > 0 { toks.get(i - 1) } else { None };
        let next = toks.get(i + 1);
        if name == "let" {
            if let Some(Token {
                tok: Tok::Ident(n), ..
            }) = next
            {
                lets.push(n);
            }
            i += 2;
            continue;
        }
        let skip = KEYWORDS.contains(&name)
            || name.starts_with('#')
            || name == "$env"
            || lets.contains(&name)
            || is_punct(prev, ".")
            || is_punct(prev, "?.")
            || is_punct(next, "(")
            || (is_punct(next, ":") && (is_punct(prev, "{") || is_punct(prev, ",")))
            || (name == "sprig" && is_punct(next, "."));
        if skip {
            i += 1;
            continue;
        }
        let mut path = name.to_string();
        let mut j = i + 1;
        loop {
            if (is_punct(toks.get(j), ".") || is_punct(toks.get(j), "?."))
                && matches!(
                    toks.get(j + 1),
                    Some(Token {
                        tok: Tok::Ident(_),
                        ..
                    })
                )
                && !is_punct(toks.get(j + 2), "(")
            {
                if let Tok::Ident(seg) = toks[j + 1].tok {
                    path.push('.');
                    path.push_str(seg);
                }
                j += 2;
            } else if is_punct(toks.get(j), "[")
                && matches!(
                    toks.get(j + 1),
                    Some(Token {
                        tok: Tok::Str(_),
                        ..
                    })
                )
                && is_punct(toks.get(j + 2), "]")
            {
                if let Tok::Str(seg) = &toks[j + 1].tok {
                    path.push('.');
                    path.push_str(seg);
                }
                j += 3;
            } else {
                break;
            }
        }
        if !out.contains(&path) {
            out.push(path);
        }
        i = j;
    }
    out
}

/// Rewrite `sprig.name(` into `__sprig_name(` outside string literals and comments.
pub(crate) fn rewrite_sprig(src: &str) -> String {
    if !src.contains("sprig") {
        return src.to_string();
    }
    let toks = lex(src);
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for i in 0..toks.len() {
        if toks[i].tok == Tok::Ident("sprig")
            && !(i > 0 && (is_punct(toks.get(i - 1), ".") || is_punct(toks.get(i - 1), "?.")))
            && is_punct(toks.get(i + 1), ".")
            && is_punct(toks.get(i + 3), "(")
            && let Some(Token {
                tok: Tok::Ident(f),
                end,
                ..
            }) = toks.get(i + 2)
        {
            out.push_str(&src[last..toks[i].start]);
            out.push_str(SPRIG_PREFIX);
            out.push_str(f);
            last = *end;
        }
    }
    out.push_str(&src[last..]);
    out
}

/// Function that builds a map from `key, value, ...` pairs; map literals are rewritten into
/// calls to it because expr-lang 2.1 only accepts constants as map-literal values (it
/// panics on `{a: f(x)}`).
pub(crate) const DICT_FN: &str = "__dict";

/// Rewrite `{k: expr, 'k2': expr}` map literals into `__dict("k", expr, 'k2', expr)`.
pub(crate) fn rewrite_maps(src: &str) -> String {
    if !src.contains('{') {
        return src.to_string();
    }
    let toks = lex(src);
    let mut out = String::with_capacity(src.len() + 16);
    let mut last = 0;
    let mut i = 0;
    while i < toks.len() {
        let is_map = is_punct(toks.get(i), "{")
            && matches!(
                toks.get(i + 1),
                Some(Token {
                    tok: Tok::Ident(_) | Tok::Str(_),
                    ..
                })
            )
            && is_punct(toks.get(i + 2), ":");
        if !is_map {
            i += 1;
            continue;
        }
        // Find the matching close and the top-level entries.
        let mut depth = 0usize;
        let mut entries: Vec<(usize, usize)> = Vec::new();
        let mut entry_start = i + 1;
        let mut close = None;
        for (j, t) in toks.iter().enumerate().skip(i) {
            match t.tok {
                Tok::Punct("{" | "[" | "(") => depth += 1,
                Tok::Punct("}" | "]" | ")") => {
                    depth -= 1;
                    if depth == 0 {
                        entries.push((entry_start, j));
                        close = Some(j);
                        break;
                    }
                }
                Tok::Punct(",") if depth == 1 => {
                    entries.push((entry_start, j));
                    entry_start = j + 1;
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            // Unbalanced: leave it for expr-lang to report.
            break;
        };
        let mut parts = Vec::new();
        for (a, b) in entries {
            if a >= b {
                continue; // trailing comma
            }
            let key = match &toks[a].tok {
                Tok::Ident(k) => format!("{k:?}"),
                _ => src[toks[a].start..toks[a].end].to_string(),
            };
            let value = if a + 2 < b {
                &src[toks[a + 2].start..toks[b - 1].end]
            } else {
                "nil"
            };
            parts.push(format!("{key}, {}", rewrite_maps(value)));
        }
        out.push_str(&src[last..toks[i].start]);
        out.push_str(DICT_FN);
        out.push('(');
        out.push_str(&parts.join(", "));
        out.push(')');
        last = toks[close].end;
        i = close + 1;
    }
    out.push_str(&src[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_basic() {
        assert_eq!(
            paths("inputs.parameters.x == 'a'"),
            vec!["inputs.parameters.x"]
        );
        assert_eq!(
            paths(r#"inputs.parameters["should-print"] == 'true'"#),
            vec!["inputs.parameters.should-print"]
        );
        assert_eq!(
            paths("jsonpath(workflow.parameters.config, '$.a') + sprig.trim(x)"),
            vec!["workflow.parameters.config", "x"]
        );
        assert_eq!(paths("filter([1, 3], {# > 1})"), Vec::<String>::new());
        assert_eq!(paths("{avg: a, min: b}"), vec!["a", "b"]);
        assert_eq!(paths("c ? a : b"), vec!["c", "a", "b"]);
        assert_eq!(paths("let v = x.y; v + 1"), vec!["x.y"]);
        assert_eq!(paths("'workflow.status' + `raw`"), Vec::<String>::new());
        assert_eq!(paths("(now() - t).Seconds() > 1"), vec!["t"]);
        assert_eq!(paths("a.b // c.d\n + e /* f */"), vec!["a.b", "e"]);
        assert_eq!(paths("x?.y ?? z"), vec!["x.y", "z"]);
    }

    #[test]
    fn map_rewrite() {
        assert_eq!(
            rewrite_maps("{a: f(x), 'b-c': [1, 2], }"),
            r#"__dict("a", f(x), 'b-c', [1, 2])"#
        );
        assert_eq!(rewrite_maps("filter(xs, {# > 1})"), "filter(xs, {# > 1})");
        assert_eq!(
            rewrite_maps("map(xs, {toJson({v: #})})"),
            r#"map(xs, {toJson(__dict("v", #))})"#
        );
        assert_eq!(
            rewrite_maps("{a: {b: 1}}"),
            r#"__dict("a", __dict("b", 1))"#
        );
        assert_eq!(rewrite_maps("'{a: 1}'"), "'{a: 1}'");
    }

    #[test]
    fn sprig_rewrite() {
        assert_eq!(
            rewrite_sprig("sprig.add(1, sprig.max(2))"),
            "__sprig_add(1, __sprig_max(2))"
        );
        assert_eq!(rewrite_sprig("'sprig.add(1)'"), "'sprig.add(1)'");
        assert_eq!(rewrite_sprig("a.sprig.x(1)"), "a.sprig.x(1)");
        assert_eq!(
            rewrite_sprig("sprig . trim ( 'a' )"),
            "__sprig_trim ( 'a' )"
        );
    }
}
