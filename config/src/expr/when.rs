//! `when` conditions, evaluated the way Argo's `shouldExecute` does: with govaluate, after
//! substitution, where every bare word (govaluate "variable") is turned into a string
//! literal, so `heads == heads` compares two strings and `tails =~ 'ta.*'` is a regex match.

use super::ExprError;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Num(f64),
    Str(String),
    Bool(bool),
    List(Vec<V>),
}

impl V {
    fn show(&self) -> String {
        match self {
            V::Num(n) => super::gofmt::go_float_v(*n),
            V::Str(s) => s.clone(),
            V::Bool(b) => b.to_string(),
            V::List(l) => format!("[{}]", l.iter().map(V::show).collect::<Vec<_>>().join(" ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    Val(V),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "==", "!=", ">=", "<=", "=~", "!~", "&&", "||", "??", "**", ">>", "<<", ">", "<", "!", "+",
    "-", "*", "/", "%", "(", ")", ",", "?", ":", "&", "|", "^", "~",
];

fn lex(s: &str) -> Result<Vec<T>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let n = s[st..i]
                .parse::<f64>()
                .map_err(|_| format!("Unable to parse numeric value '{}' to float64", &s[st..i]))?;
            out.push(T::Val(V::Num(n)));
        } else if c == b'\'' || c == b'"' {
            let mut v = String::new();
            i += 1;
            loop {
                if i >= b.len() {
                    return Err("Unclosed string literal".into());
                }
                if b[i] == c {
                    i += 1;
                    break;
                }
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or('\0');
                v.push(ch);
                i += ch.len_utf8();
            }
            out.push(T::Val(V::Str(v)));
        } else if c == b'[' {
            let end = s[i..].find(']').ok_or("Unclosed parameter bracket")?;
            out.push(T::Val(V::Str(s[i + 1..i + end].to_string())));
            i += end + 1;
        } else if let Some(ch) = s[i..]
            .chars()
            .next()
            .filter(|ch| ch.is_alphabetic() || *ch == '_')
        {
            let st = i;
            i += ch.len_utf8();
            while let Some(ch) = s[i..]
                .chars()
                .next()
                .filter(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == '.')
            {
                i += ch.len_utf8();
            }
            let w = &s[st..i];
            if s[i..].trim_start().starts_with('(') && !matches!(w, "in" | "IN") {
                return Err(format!("Undefined function {w}"));
            }
            out.push(match w {
                "true" => T::Val(V::Bool(true)),
                "false" => T::Val(V::Bool(false)),
                "in" | "IN" => T::Op("in"),
                _ => T::Val(V::Str(w.to_string())),
            });
        } else if let Some(op) = OPS.iter().find(|op| s[i..].starts_with(**op)) {
            out.push(T::Op(op));
            i += op.len();
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            return Err(format!("Invalid token: '{ch}'"));
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<T>,
    pos: usize,
}

fn num(v: &V, op: &str) -> Result<f64, String> {
    match v {
        V::Num(n) => Ok(*n),
        other => Err(format!(
            "Value '{}' cannot be used with the modifier '{op}', it is not a number",
            other.show()
        )),
    }
}

fn boolean(v: &V, op: &str) -> Result<bool, String> {
    match v {
        V::Bool(b) => Ok(*b),
        other => Err(format!(
            "Value '{}' cannot be used with the logical operator '{op}', it is not a bool",
            other.show()
        )),
    }
}

impl P {
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&T::Op(static_op(op))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn ternary(&mut self) -> Result<V, String> {
        let c = self.coalesce()?;
        if self.eat("?") {
            let a = self.ternary()?;
            if self.eat(":") {
                let b = self.ternary()?;
                return Ok(if c == V::Bool(true) { a } else { b });
            }
            return Ok(if c == V::Bool(true) {
                a
            } else {
                V::Bool(false)
            });
        }
        Ok(c)
    }
    fn coalesce(&mut self) -> Result<V, String> {
        let l = self.or()?;
        if self.eat("??") {
            let _ = self.coalesce()?;
        }
        Ok(l)
    }
    fn or(&mut self) -> Result<V, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = V::Bool(boolean(&l, "||")? | boolean(&r, "||")?);
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<V, String> {
        let mut l = self.cmp()?;
        while self.eat("&&") {
            let r = self.cmp()?;
            l = V::Bool(boolean(&l, "&&")? & boolean(&r, "&&")?);
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<V, String> {
        let l = self.add()?;
        for op in ["==", "!=", ">=", "<=", ">", "<", "=~", "!~", "in"] {
            if self.eat(op) {
                let r = self.add()?;
                return compare(op, &l, &r).map(V::Bool);
            }
        }
        Ok(l)
    }
    fn add(&mut self) -> Result<V, String> {
        let mut l = self.mul()?;
        loop {
            if self.eat("+") {
                let r = self.mul()?;
                l = match (&l, &r) {
                    (V::Num(a), V::Num(b)) => V::Num(a + b),
                    (V::Str(_), _) | (_, V::Str(_)) => V::Str(l.show() + &r.show()),
                    _ => V::Num(num(&l, "+")? + num(&r, "+")?),
                };
            } else if self.eat("-") {
                let r = self.mul()?;
                l = V::Num(num(&l, "-")? - num(&r, "-")?);
            } else {
                return Ok(l);
            }
        }
    }
    fn mul(&mut self) -> Result<V, String> {
        let mut l = self.unary()?;
        loop {
            let op = ["**", "*", "/", "%"].into_iter().find(|op| self.eat(op));
            let Some(op) = op else { return Ok(l) };
            let r = self.unary()?;
            let (a, b) = (num(&l, op)?, num(&r, op)?);
            l = V::Num(match op {
                "**" => a.powf(b),
                "*" => a * b,
                "/" => a / b,
                _ => a % b,
            });
        }
    }
    fn unary(&mut self) -> Result<V, String> {
        if self.eat("!") {
            let v = self.unary()?;
            return Ok(V::Bool(!boolean(&v, "!")?));
        }
        if self.eat("-") {
            let v = self.unary()?;
            return Ok(V::Num(-num(&v, "-")?));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<V, String> {
        match self.toks.get(self.pos).cloned() {
            Some(T::Val(v)) => {
                self.pos += 1;
                Ok(v)
            }
            Some(T::Op("(")) => {
                self.pos += 1;
                let mut items = vec![self.ternary()?];
                while self.eat(",") {
                    items.push(self.ternary()?);
                }
                if !self.eat(")") {
                    return Err("Unbalanced parenthesis".into());
                }
                Ok(if items.len() == 1 {
                    items.remove(0)
                } else {
                    V::List(items)
                })
            }
            Some(T::Op(op)) => Err(format!(
                "Cannot transition token types from {} [{op}]",
                "an operator"
            )),
            None => Err("Unexpected end of expression".into()),
        }
    }
}

fn static_op(op: &str) -> &'static str {
    OPS.iter()
        .copied()
        .chain(["in"])
        .find(|o| *o == op)
        .unwrap_or("")
}

fn compare(op: &str, l: &V, r: &V) -> Result<bool, String> {
    match op {
        "==" => Ok(l == r),
        "!=" => Ok(l != r),
        "=~" | "!~" => {
            let (V::Str(s), V::Str(p)) = (l, r) else {
                return Err(format!(
                    "Value '{}' cannot be used with the comparator '{op}', it is not a string",
                    if matches!(l, V::Str(_)) {
                        r.show()
                    } else {
                        l.show()
                    }
                ));
            };
            let re = regex::Regex::new(p)
                .map_err(|e| format!("Unable to compile regexp pattern '{p}': {e}"))?;
            Ok(re.is_match(s) == (op == "=~"))
        }
        "in" => match r {
            V::List(items) => Ok(items.contains(l)),
            other => Ok(other == l),
        },
        _ => {
            let ord = match (l, r) {
                (V::Num(a), V::Num(b)) => a.partial_cmp(b),
                (V::Str(a), V::Str(b)) => Some(a.cmp(b)),
                _ => {
                    return Err(format!(
                        "Value '{}' cannot be used with the comparator '{op}', it is not a number",
                        l.show()
                    ));
                }
            };
            let Some(ord) = ord else { return Ok(false) };
            Ok(match op {
                ">" => ord.is_gt(),
                "<" => ord.is_lt(),
                ">=" => ord.is_ge(),
                _ => ord.is_le(),
            })
        }
    }
}

/// Evaluate an already substituted `when` condition. Empty means true. Bare words are
/// strings; numbers compare numerically; `=~`/`!~` match regular expressions; `&&`, `||`,
/// `!`, parentheses, arithmetic, `in (a, b)` and `c ? a : b` work as in govaluate.
/// Errors read `Invalid 'when' expression '<condition>': <reason>` as in Argo.
pub fn evaluate_when(condition: &str) -> Result<bool, ExprError> {
    if condition.is_empty() {
        return Ok(true);
    }
    let invalid = |message: String| ExprError::InvalidWhen {
        condition: condition.to_string(),
        message,
    };
    let toks = lex(condition).map_err(|m| {
        if m.starts_with("Invalid token") {
            invalid(format!(
                "{m} (hint: try wrapping the affected expression in quotes (\"))"
            ))
        } else {
            invalid(m)
        }
    })?;
    let mut p = P { toks, pos: 0 };
    let v = p.ternary().map_err(invalid)?;
    if p.pos != p.toks.len() {
        return Err(invalid(format!(
            "unexpected token after position {}",
            p.pos
        )));
    }
    match v {
        V::Bool(b) => Ok(b),
        other => Err(invalid(format!(
            "expected boolean result, got '{}'",
            other.show()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_examples() {
        // coinflip.yaml / conditionals*.yaml after substitution.
        assert!(evaluate_when("heads == heads").unwrap());
        assert!(!evaluate_when("tails == heads").unwrap());
        assert!(evaluate_when("tails != heads").unwrap());
        assert!(evaluate_when("true == true").unwrap());
        assert!(evaluate_when("true").unwrap());
        assert!(!evaluate_when("false").unwrap());
        assert!(evaluate_when("tails =~ 'ta.*'").unwrap());
        assert!(!evaluate_when("heads =~ 'ta.*'").unwrap());
        assert!(evaluate_when("heads !~ 'ta.*'").unwrap());
        assert!(evaluate_when("12 > 10").unwrap());
        assert!(!evaluate_when("5 > 10").unwrap());
        assert!(evaluate_when("( heads == heads && 7 > 5 ) || tails == x").unwrap());
        assert!(evaluate_when("\"hello world\" == 'hello world'").unwrap());
        assert!(evaluate_when("").unwrap());
        assert!(evaluate_when("1.0 == 1").unwrap());
        assert!(evaluate_when("a in (b, a)").unwrap());
        assert!(evaluate_when("!(a == b)").unwrap());
        assert!(evaluate_when("my.output == my.output").unwrap());
        assert!(evaluate_when("[a-b] == 'a-b'").unwrap());
        assert!(!evaluate_when("'5' == 5").unwrap());
        assert!(evaluate_when("2 + 3 == 5 && 'a' + 'b' == ab").unwrap());
    }

    #[test]
    fn errors() {
        let e = evaluate_when("heads").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid 'when' expression 'heads': expected boolean result, got 'heads'"
        );
        let e = evaluate_when("foo-bar == x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid 'when' expression 'foo-bar == x': Value 'foo' cannot be used with the modifier '-', it is not a number"
        );
        let e = evaluate_when("a == @").unwrap_err();
        assert!(
            e.to_string().ends_with(
                "Invalid token: '@' (hint: try wrapping the affected expression in quotes (\"))"
            ),
            "{e}"
        );
        assert!(evaluate_when("(a == b").is_err());
        assert!(evaluate_when("a ==").is_err());
        assert!(evaluate_when("a && true").is_err());
        assert!(evaluate_when("f(x) == 1").is_err());
        assert!(evaluate_when("a == b c").is_err());
    }
}
