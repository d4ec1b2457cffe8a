//! The `sprig.*` functions Argo exposes (Masterminds/sprig `GenericFuncMap`), with sprig's
//! argument order (`sprig.replace(old, new, s)`) and its lenient conversions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use expr::{Environment, Value};

use super::eval::now_value;
use super::gofmt::{from_json, go_fmt_v, go_json};
use super::scan::SPRIG_PREFIX;

type R = expr::Result<Value>;

fn err<T>(msg: String) -> expr::Result<T> {
    Err(msg.into())
}

/// sprig's `strval`: strings as is, anything else `%v`.
fn strval(v: &Value) -> String {
    go_fmt_v(v)
}

/// spf13/cast `ToInt64`: numbers truncate, strings parse (0 on failure), bools 1/0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            let t = s.trim();
            let t = t.strip_suffix(".0").unwrap_or(t);
            parse_go_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, d) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = d.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if d.len() > 1 && d.starts_with('0') {
        i64::from_str_radix(d.trim_start_matches("0o"), 8).ok()?
    } else {
        d.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Integer(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        _ => false,
    }
}

fn args_n(name: &str, args: &[Value], n: usize) -> expr::Result<()> {
    if args.len() != n {
        return err(format!(
            "sprig.{name}() takes {n} argument(s), got {}",
            args.len()
        ));
    }
    Ok(())
}

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Nil => vec![],
        other => vec![strval(other)],
    }
}

fn regex(pattern: &str) -> expr::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regex '{pattern}': {e}").into())
}

fn add(env: &mut Environment<'static>, name: &str, f: fn(&str, Vec<Value>) -> R) {
    let n = name.to_string();
    env.add_function(&format!("{SPRIG_PREFIX}{name}"), move |c| f(&n, c.args));
}

pub(crate) fn register(env: &mut Environment<'static>) {
    // Strings.
    add(env, "trim", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0]).trim().into())
    });
    add(env, "upper", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0]).to_uppercase().into())
    });
    add(env, "lower", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0]).to_lowercase().into())
    });
    add(env, "title", |n, a| {
        args_n(n, &a, 1)?;
        let mut out = String::new();
        let mut prev_letter = false;
        for ch in strval(&a[0]).chars() {
            if !prev_letter && ch.is_alphabetic() {
                out.extend(ch.to_uppercase());
            } else {
                out.push(ch);
            }
            prev_letter = ch.is_alphanumeric() || ch == '_' || ch == '\'';
        }
        Ok(out.into())
    });
    add(env, "replace", |n, a| {
        args_n(n, &a, 3)?;
        Ok(strval(&a[2]).replace(&strval(&a[0]), &strval(&a[1])).into())
    });
    add(env, "toString", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0]).into())
    });
    add(env, "contains", |n, a| {
        args_n(n, &a, 2)?;
        Ok(strval(&a[1]).contains(&strval(&a[0])).into())
    });
    add(env, "hasPrefix", |n, a| {
        args_n(n, &a, 2)?;
        Ok(strval(&a[1]).starts_with(&strval(&a[0])).into())
    });
    add(env, "hasSuffix", |n, a| {
        args_n(n, &a, 2)?;
        Ok(strval(&a[1]).ends_with(&strval(&a[0])).into())
    });
    add(env, "trimPrefix", |n, a| {
        args_n(n, &a, 2)?;
        let s = strval(&a[1]);
        Ok(s.strip_prefix(&strval(&a[0]))
            .unwrap_or(&s)
            .to_string()
            .into())
    });
    add(env, "trimSuffix", |n, a| {
        args_n(n, &a, 2)?;
        let s = strval(&a[1]);
        Ok(s.strip_suffix(&strval(&a[0]))
            .unwrap_or(&s)
            .to_string()
            .into())
    });
    add(env, "trimAll", |n, a| {
        args_n(n, &a, 2)?;
        let cut: Vec<char> = strval(&a[0]).chars().collect();
        Ok(strval(&a[1])
            .trim_matches(cut.as_slice())
            .to_string()
            .into())
    });
    add(env, "nospace", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0])
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .into())
    });
    add(env, "repeat", |n, a| {
        args_n(n, &a, 2)?;
        Ok(strval(&a[1]).repeat(to_i64(&a[0]).max(0) as usize).into())
    });
    add(env, "substr", |n, a| {
        args_n(n, &a, 3)?;
        let s: Vec<char> = strval(&a[2]).chars().collect();
        let (start, end) = (to_i64(&a[0]), to_i64(&a[1]));
        let len = s.len() as i64;
        let out: String = if start < 0 {
            s[..end.clamp(0, len) as usize].iter().collect()
        } else if end < 0 || end > len {
            s[start.min(len) as usize..].iter().collect()
        } else {
            s[start.min(end) as usize..end as usize].iter().collect()
        };
        Ok(out.into())
    });
    add(env, "trunc", |n, a| {
        args_n(n, &a, 2)?;
        let s: Vec<char> = strval(&a[1]).chars().collect();
        let c = to_i64(&a[0]);
        let len = s.len() as i64;
        let out: String = if c < 0 && len + c > 0 {
            s[(len + c) as usize..].iter().collect()
        } else if c >= 0 && len > c {
            s[..c as usize].iter().collect()
        } else {
            s.iter().collect()
        };
        Ok(out.into())
    });
    add(env, "cat", |_, a| {
        Ok(a.iter()
            .filter(|v| !v.is_nil())
            .map(strval)
            .collect::<Vec<_>>()
            .join(" ")
            .into())
    });
    add(env, "quote", |_, a| {
        let q: Vec<String> = a
            .iter()
            .filter(|v| !v.is_nil())
            .map(|v| serde_json::Value::String(strval(v)).to_string())
            .collect();
        Ok(q.join(" ").into())
    });
    add(env, "squote", |_, a| {
        let q: Vec<String> = a
            .iter()
            .filter(|v| !v.is_nil())
            .map(|v| format!("'{}'", strval(v)))
            .collect();
        Ok(q.join(" ").into())
    });
    add(env, "indent", |n, a| {
        args_n(n, &a, 2)?;
        let pad = " ".repeat(to_i64(&a[0]).max(0) as usize);
        Ok(format!("{pad}{}", strval(&a[1]).replace('\n', &format!("\n{pad}"))).into())
    });
    add(env, "nindent", |n, a| {
        args_n(n, &a, 2)?;
        let pad = " ".repeat(to_i64(&a[0]).max(0) as usize);
        Ok(format!(
            "\n{pad}{}",
            strval(&a[1]).replace('\n', &format!("\n{pad}"))
        )
        .into())
    });
    add(env, "split", |n, a| {
        args_n(n, &a, 2)?;
        let s = strval(&a[1]);
        Ok(s.split(strval(&a[0]).as_str())
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::from(p)))
            .collect())
    });
    add(env, "splitList", |n, a| {
        args_n(n, &a, 2)?;
        Ok(Value::Array(
            strval(&a[1])
                .split(strval(&a[0]).as_str())
                .map(Value::from)
                .collect(),
        ))
    });
    add(env, "join", |n, a| {
        args_n(n, &a, 2)?;
        Ok(str_list(&a[1]).join(&strval(&a[0])).into())
    });
    add(env, "regexMatch", |n, a| {
        args_n(n, &a, 2)?;
        Ok(regex(&strval(&a[0]))
            .map(|r| r.is_match(&strval(&a[1])))
            .unwrap_or(false)
            .into())
    });
    add(env, "regexReplaceAll", |n, a| {
        args_n(n, &a, 3)?;
        Ok(regex(&strval(&a[0]))?
            .replace_all(&strval(&a[1]), strval(&a[2]).as_str())
            .into_owned()
            .into())
    });
    add(env, "regexFind", |n, a| {
        args_n(n, &a, 2)?;
        Ok(regex(&strval(&a[0]))?
            .find(&strval(&a[1]))
            .map_or("", |m| m.as_str())
            .to_string()
            .into())
    });
    add(env, "sha256sum", |n, a| {
        args_n(n, &a, 1)?;
        Ok(sha256_hex(strval(&a[0]).as_bytes()).into())
    });
    add(env, "b64enc", |n, a| {
        args_n(n, &a, 1)?;
        Ok(STANDARD.encode(strval(&a[0])).into())
    });
    add(env, "b64dec", |n, a| {
        args_n(n, &a, 1)?;
        // sprig returns the decoding error's text instead of failing.
        Ok(match STANDARD.decode(strval(&a[0])) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e.to_string(),
        }
        .into())
    });
    // Conversions and math (sprig works on int64).
    add(env, "atoi", |n, a| {
        args_n(n, &a, 1)?;
        Ok(strval(&a[0]).parse::<i64>().unwrap_or(0).into())
    });
    add(env, "int", |n, a| {
        args_n(n, &a, 1)?;
        Ok(to_i64(&a[0]).into())
    });
    add(env, "int64", |n, a| {
        args_n(n, &a, 1)?;
        Ok(to_i64(&a[0]).into())
    });
    add(env, "float64", |n, a| {
        args_n(n, &a, 1)?;
        Ok(to_f64(&a[0]).into())
    });
    add(env, "add", |_, a| {
        Ok(a.iter().map(to_i64).fold(0i64, i64::wrapping_add).into())
    });
    add(env, "add1", |n, a| {
        args_n(n, &a, 1)?;
        Ok(to_i64(&a[0]).wrapping_add(1).into())
    });
    add(env, "sub", |n, a| {
        args_n(n, &a, 2)?;
        Ok(to_i64(&a[0]).wrapping_sub(to_i64(&a[1])).into())
    });
    add(env, "mul", |_, a| {
        Ok(a.iter().map(to_i64).fold(1i64, i64::wrapping_mul).into())
    });
    add(env, "div", |n, a| {
        args_n(n, &a, 2)?;
        match to_i64(&a[1]) {
            0 => err("sprig.div: integer divide by zero".into()),
            d => Ok(to_i64(&a[0]).wrapping_div(d).into()),
        }
    });
    add(env, "mod", |n, a| {
        args_n(n, &a, 2)?;
        match to_i64(&a[1]) {
            0 => err("sprig.mod: integer divide by zero".into()),
            d => Ok(to_i64(&a[0]).wrapping_rem(d).into()),
        }
    });
    add(env, "max", |n, a| match a.iter().map(to_i64).max() {
        Some(m) => Ok(m.into()),
        None => err(format!("sprig.{n}() needs at least one argument")),
    });
    add(env, "min", |n, a| match a.iter().map(to_i64).min() {
        Some(m) => Ok(m.into()),
        None => err(format!("sprig.{n}() needs at least one argument")),
    });
    // Collections and defaults.
    add(env, "list", |_, a| Ok(Value::Array(a)));
    add(env, "dict", |_, a| {
        let mut m = Vec::new();
        for pair in a.chunks(2) {
            m.push((
                strval(&pair[0]),
                pair.get(1).cloned().unwrap_or_else(|| Value::from("")),
            ));
        }
        Ok(m.into_iter().collect())
    });
    add(env, "default", |n, a| {
        if a.is_empty() || a.len() > 2 {
            return err(format!(
                "sprig.{n}() takes 1 or 2 arguments, got {}",
                a.len()
            ));
        }
        Ok(match a.get(1) {
            Some(given) if !is_empty(given) => given.clone(),
            _ => a[0].clone(),
        })
    });
    add(env, "empty", |n, a| {
        args_n(n, &a, 1)?;
        Ok(is_empty(&a[0]).into())
    });
    add(env, "coalesce", |_, a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    add(env, "ternary", |n, a| {
        args_n(n, &a, 3)?;
        Ok(if a[2].as_bool() == Some(true) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    add(env, "toJson", |n, a| {
        args_n(n, &a, 1)?;
        Ok(go_json(&a[0]).unwrap_or_default().into())
    });
    add(env, "fromJson", |n, a| {
        args_n(n, &a, 1)?;
        Ok(serde_json::from_str::<serde_json::Value>(&strval(&a[0]))
            .map(|j| from_json(&j))
            .unwrap_or(Value::Nil))
    });
    // Randomness is not reproducible: refuse rather than fake it.
    for name in [
        "randAlpha",
        "randAlphaNum",
        "randNumeric",
        "randAscii",
        "randBytes",
        "randInt",
        "uuidv4",
    ] {
        add(env, name, |n, _| {
            err(format!(
                "sprig.{n}() is not supported: workflows must be reproducible"
            ))
        });
    }
    // Time: now comes from the injected clock.
    env.add_function(&format!("{SPRIG_PREFIX}now"), |c| now_value(c.ctx));
    env.add_function(&format!("{SPRIG_PREFIX}date"), |c| {
        args_n("date", &c.args, 2)?;
        let layout = strval(&c.args[0]);
        let t = match &c.args[1] {
            Value::DateTime(d) => **d,
            Value::Integer(secs) => chrono::DateTime::from_timestamp(*secs, 0)
                .ok_or_else(|| format!("sprig.date: timestamp {secs} out of range"))?
                .fixed_offset(),
            Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
                Ok(d) => d,
                Err(_) => now_dt(c.ctx)?,
            },
            _ => now_dt(c.ctx)?,
        };
        Ok(go_date_format(&t.to_utc(), &layout).into())
    });
}

fn now_dt(ctx: &dyn expr::ContextProvider) -> expr::Result<chrono::DateTime<chrono::FixedOffset>> {
    match now_value(ctx)? {
        Value::DateTime(d) => Ok(*d),
        _ => err("now is not a time".into()),
    }
}

/// Format a time with a Go reference layout (`2006-01-02T15:04:05Z07:00`).
pub(crate) fn go_date_format(t: &chrono::DateTime<chrono::Utc>, layout: &str) -> String {
    use chrono::{Datelike, Timelike};
    let mut out = String::new();
    let mut rest = layout;
    let h12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    while !rest.is_empty() {
        let table: &[(&str, String)] = &[
            ("January", t.format("%B").to_string()),
            ("Jan", t.format("%b").to_string()),
            ("Monday", t.format("%A").to_string()),
            ("Mon", t.format("%a").to_string()),
            ("MST", "UTC".into()),
            ("2006", format!("{:04}", t.year())),
            ("002", format!("{:03}", t.ordinal())),
            ("01", format!("{:02}", t.month())),
            ("02", format!("{:02}", t.day())),
            ("03", format!("{:02}", h12(t.hour()))),
            ("04", format!("{:02}", t.minute())),
            ("05", format!("{:02}", t.second())),
            ("06", format!("{:02}", t.year() % 100)),
            ("_2", format!("{:>2}", t.day())),
            ("15", format!("{:02}", t.hour())),
            ("1", t.month().to_string()),
            ("2", t.day().to_string()),
            ("3", h12(t.hour()).to_string()),
            ("4", t.minute().to_string()),
            ("5", t.second().to_string()),
            (
                "PM",
                if t.hour() >= 12 {
                    "PM".into()
                } else {
                    "AM".into()
                },
            ),
            (
                "pm",
                if t.hour() >= 12 {
                    "pm".into()
                } else {
                    "am".into()
                },
            ),
            ("Z07:00", "Z".into()),
            ("Z0700", "Z".into()),
            ("Z07", "Z".into()),
            ("-07:00", "+00:00".into()),
            ("-0700", "+0000".into()),
            ("-07", "+00".into()),
        ];
        // Fractional seconds: .000 / .999 (and , variants).
        if let Some(first) = rest.chars().next().filter(|c| *c == '.' || *c == ',') {
            let digits = rest[1..]
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'9')
                .count();
            let after = rest[1 + digits..].bytes().next();
            if digits > 0 && !after.is_some_and(|b| b.is_ascii_digit()) {
                let nanos = format!("{:09}", t.nanosecond());
                let mut frac = nanos[..digits.min(9)].to_string();
                if rest.as_bytes()[1] == b'9' {
                    frac = frac.trim_end_matches('0').to_string();
                }
                if !frac.is_empty() {
                    out.push(first);
                    out.push_str(&frac);
                }
                rest = &rest[1 + digits..];
                continue;
            }
        }
        if let Some((tok, val)) = table.iter().find(|(tok, _)| rest.starts_with(tok)) {
            out.push_str(val);
            rest = &rest[tok.len()..];
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

/// SHA-256 (FIPS 180-4), hex-encoded; small enough not to pull in a crate for `sha256sum`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use crate::expr::{Unresolved, Vars, evaluate, substitute};
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("p", " Hello World ");
        v.insert("n", "42");
        v.set_now(
            chrono::DateTime::parse_from_rfc3339("2025-06-07T18:09:10.5Z")
                .unwrap()
                .to_utc(),
        );
        v
    }

    fn s(e: &str) -> String {
        substitute(&format!("{{{{={e}}}}}"), &vars(), Unresolved::Error).unwrap()
    }

    #[test]
    fn strings() {
        assert_eq!(s("sprig.trim(p)"), "Hello World");
        assert_eq!(s("sprig.upper('ab')"), "AB");
        assert_eq!(s("sprig.lower('AB')"), "ab");
        assert_eq!(s("sprig.replace(' ', '-', sprig.trim(p))"), "Hello-World");
        assert_eq!(s("sprig.toString(12)"), "12");
        assert_eq!(s("sprig.contains('ell', p)"), "true");
        assert_eq!(s("sprig.hasPrefix('ab', 'abc')"), "true");
        assert_eq!(s("sprig.hasSuffix('bc', 'abc')"), "true");
        assert_eq!(s("sprig.hasSuffix('x', 'abc')"), "false");
        assert_eq!(s("sprig.split('$', 'a$b')._1"), "b");
        assert_eq!(s("sprig.splitList(',', 'a,b,c')"), "[a b c]");
        assert_eq!(s("sprig.join('-', sprig.list('a', 1, true))"), "a-1-true");
        assert_eq!(s("sprig.quote('a\"b', 1)"), "\"a\\\"b\" \"1\"");
        assert_eq!(s("sprig.squote('a')"), "'a'");
        assert_eq!(s("sprig.b64enc('hello')"), "aGVsbG8=");
        assert_eq!(s("sprig.b64dec('aGVsbG8=')"), "hello");
        assert_eq!(s("sprig.repeat(3, 'ab')"), "ababab");
        assert_eq!(s("sprig.substr(1, 3, 'hello')"), "el");
        assert_eq!(s("sprig.substr(2, 99, 'hello')"), "llo");
        assert_eq!(s("sprig.trunc(2, 'hello')"), "he");
        assert_eq!(s("sprig.trunc(-2, 'hello')"), "lo");
        assert_eq!(s("sprig.nospace(p)"), "HelloWorld");
        assert_eq!(s("sprig.title('hello wide world')"), "Hello Wide World");
        assert_eq!(s("sprig.cat('a', nil, 2)"), "a 2");
        assert_eq!(s("sprig.regexMatch('^h.*o$', 'hello')"), "true");
        assert_eq!(s("sprig.regexMatch('[', 'hello')"), "false");
        assert_eq!(s("sprig.regexReplaceAll('l+', 'hello', 'L')"), "heLo");
        assert_eq!(
            s("sprig.regexReplaceAll('(h)(e)', 'hello', '${2}$1')"),
            "ehllo"
        );
        assert_eq!(
            s("sprig.sha256sum('abc')"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            s("sprig.sha256sum('')"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(s("sprig.indent(2, 'a\\nb')"), "  a\n  b");
        assert_eq!(s("sprig.nindent(2, 'a')"), "\n  a");
        assert_eq!(
            s("sprig.trimPrefix('a', 'abc') + sprig.trimSuffix('c', 'abc')"),
            "bcab"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(s("sprig.atoi(n) + 1"), "43");
        assert_eq!(s("sprig.atoi('x')"), "0");
        assert_eq!(s("sprig.int('7') * 2"), "14");
        assert_eq!(s("sprig.int(3.9)"), "3");
        assert_eq!(s("sprig.float64('1.5') * 2"), "3");
        assert_eq!(s("sprig.add(1, '2', 3.7)"), "6");
        assert_eq!(s("sprig.sub(10, 3)"), "7");
        assert_eq!(s("sprig.mul(2, 3, 4)"), "24");
        assert_eq!(s("sprig.div(7, 2)"), "3");
        assert_eq!(s("sprig.mod(7, 2)"), "1");
        assert_eq!(s("sprig.max(3, 9, 4)"), "9");
        assert_eq!(s("sprig.min(3, 9, 4)"), "3");
        assert!(evaluate("sprig.div(1, 0)", &vars()).is_err());
    }

    #[test]
    fn collections_and_defaults() {
        assert_eq!(
            evaluate("sprig.list(1, 'a')", &vars()).unwrap(),
            json!([1, "a"])
        );
        assert_eq!(
            evaluate("sprig.dict('a', 1, 'b')", &vars()).unwrap(),
            json!({"a": 1, "b": ""})
        );
        assert_eq!(s("sprig.default('d', '')"), "d");
        assert_eq!(s("sprig.default('d', 'given')"), "given");
        assert_eq!(s("sprig.default('d', 0)"), "d");
        assert_eq!(s("sprig.empty('')"), "true");
        assert_eq!(s("sprig.empty([1])"), "false");
        assert_eq!(s("sprig.coalesce('', nil, 'x')"), "x");
        assert_eq!(s("sprig.ternary('y', 'n', 1 > 2)"), "n");
        assert_eq!(
            s("sprig.toJson({b: 1, a: [true, 'x<']})"),
            r#"{"a":[true,"x\u003c"],"b":1}"#
        );
        assert_eq!(
            evaluate("sprig.fromJson('{\"a\": [1, 2]}').a[1]", &vars()).unwrap(),
            json!(2)
        );
        assert_eq!(
            evaluate("sprig.fromJson('nope')", &vars()).unwrap(),
            json!(null)
        );
        let e = evaluate("sprig.randAlpha(5)", &vars()).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }

    #[test]
    fn time() {
        assert_eq!(
            s("sprig.date('2006-01-02 15:04:05.000 Mon Jan', sprig.now())"),
            "2025-06-07 18:09:10.500 Sat Jun"
        );
        assert_eq!(
            s("sprig.date('3:04PM _2 January 06', '2024-03-05T01:02:03Z')"),
            "1:02AM  5 March 24"
        );
        assert_eq!(s("sprig.date('2006', 0)"), "1970");
        assert_eq!(
            s("sprig.date('2006-01-02T15:04:05Z07:00', 'not a time')"),
            "2025-06-07T18:09:10Z"
        );
        assert_eq!(
            s("sprig.date('.999 -0700 MST', sprig.now())"),
            ".5 +0000 UTC"
        );
        let mut no_clock = vars();
        no_clock = Vars {
            now: None,
            ..no_clock
        };
        assert!(evaluate("sprig.now()", &no_clock).is_err());
    }
}
