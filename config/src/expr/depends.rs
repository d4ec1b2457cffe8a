//! Enhanced DAG `depends` logic (Argo `workflow/common/ancestry.go`, controller `dag.go`).
//!
//! Grammar: `expr := and ('||' and)*`, `and := unary ('&&' unary)*`,
//! `unary := '!' unary | '(' expr ')' | TASK ('.' RESULT)?`, with task names
//! `[A-Za-z0-9_][-A-Za-z0-9_]*` and results `Succeeded Failed Errored Skipped Omitted
//! Daemoned AnySucceeded AllFailed`. A bare `A` means `(A.Succeeded || A.Skipped ||
//! A.Daemoned)`, plus `|| A.Errored` / `|| A.Failed` when A has `continueOn`.

use std::fmt;

use super::ExprError;

/// A task result a depends expression can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskResult {
    Succeeded,
    Failed,
    Errored,
    Skipped,
    Omitted,
    Daemoned,
    AnySucceeded,
    AllFailed,
}

impl TaskResult {
    const ALL: [TaskResult; 8] = [
        TaskResult::Succeeded,
        TaskResult::Failed,
        TaskResult::Errored,
        TaskResult::Skipped,
        TaskResult::Omitted,
        TaskResult::Daemoned,
        TaskResult::AnySucceeded,
        TaskResult::AllFailed,
    ];

    /// The name as written in a depends expression.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Succeeded => "Succeeded",
            TaskResult::Failed => "Failed",
            TaskResult::Errored => "Errored",
            TaskResult::Skipped => "Skipped",
            TaskResult::Omitted => "Omitted",
            TaskResult::Daemoned => "Daemoned",
            TaskResult::AnySucceeded => "AnySucceeded",
            TaskResult::AllFailed => "AllFailed",
        }
    }
}

/// A node phase as Argo records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodePhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Error,
    Skipped,
    Omitted,
}

impl NodePhase {
    /// Argo's `Fulfilled()`: the node will not change any more (daemoned nodes count once
    /// running, see [`TaskState::fulfilled`]).
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            NodePhase::Succeeded
                | NodePhase::Failed
                | NodePhase::Error
                | NodePhase::Skipped
                | NodePhase::Omitted
        )
    }
}

/// What a depends expression needs to know about one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskState {
    /// The task node's phase (for a loop, the task group's phase).
    pub phase: NodePhase,
    /// Whether the task's template is a daemon.
    pub daemoned: bool,
    /// For a loop (task group), the phases of its children; `None` for a plain task.
    pub children: Option<Vec<NodePhase>>,
    /// The task's `continueOn.failed`: a bare reference then also accepts Failed.
    pub continue_on_failed: bool,
    /// The task's `continueOn.error`: a bare reference then also accepts Errored.
    pub continue_on_error: bool,
}

impl TaskState {
    /// A plain task in this phase.
    pub fn phase(phase: NodePhase) -> Self {
        TaskState {
            phase,
            ..Default::default()
        }
    }

    /// Argo only evaluates a depends expression once every task it names is fulfilled.
    pub fn fulfilled(&self) -> bool {
        self.phase.is_completed() || (self.daemoned && self.phase == NodePhase::Running)
    }

    /// Whether this task has the given result (Argo's `TaskResults`).
    pub fn has(&self, r: TaskResult) -> bool {
        match r {
            TaskResult::Succeeded => self.phase == NodePhase::Succeeded,
            TaskResult::Failed => self.phase == NodePhase::Failed,
            TaskResult::Errored => self.phase == NodePhase::Error,
            TaskResult::Skipped => self.phase == NodePhase::Skipped,
            TaskResult::Omitted => self.phase == NodePhase::Omitted,
            TaskResult::Daemoned => self.daemoned && self.phase != NodePhase::Pending,
            TaskResult::AnySucceeded => self
                .children
                .as_ref()
                .is_some_and(|c| c.contains(&NodePhase::Succeeded)),
            TaskResult::AllFailed => self
                .children
                .as_ref()
                .is_some_and(|c| !c.is_empty() && c.iter().all(|p| *p == NodePhase::Failed)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Always,
    Bare(String),
    Result(String, TaskResult),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A parsed depends expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depends {
    root: Node,
}

impl Depends {
    /// Referenced task names, deduplicated, in order of first appearance.
    pub fn tasks(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Always => {}
                Node::Bare(t) | Node::Result(t, _) => {
                    if !out.contains(&t.as_str()) {
                        out.push(t);
                    }
                }
                Node::Not(a) => walk(a, out),
                Node::And(a, b) | Node::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Tasks tested with `.AnySucceeded` / `.AllFailed` (Argo's `DependencyTypeItems`).
    pub fn item_tasks(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Result(t, TaskResult::AnySucceeded | TaskResult::AllFailed)
                    if !out.contains(&t.as_str()) =>
                {
                    out.push(t);
                }
                Node::Not(a) => walk(a, out),
                Node::And(a, b) | Node::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Whether the dependent task should execute, given every referenced task's state
    /// (call it once all of them are [`TaskState::fulfilled`]).
    pub fn evaluate(&self, state: &dyn Fn(&str) -> TaskState) -> bool {
        fn eval(n: &Node, state: &dyn Fn(&str) -> TaskState) -> bool {
            match n {
                Node::Always => true,
                Node::Bare(t) => {
                    let s = state(t);
                    s.has(TaskResult::Succeeded)
                        || s.has(TaskResult::Skipped)
                        || s.has(TaskResult::Daemoned)
                        || (s.continue_on_error && s.has(TaskResult::Errored))
                        || (s.continue_on_failed && s.has(TaskResult::Failed))
                }
                Node::Result(t, r) => state(t).has(*r),
                Node::Not(a) => !eval(a, state),
                Node::And(a, b) => eval(a, state) && eval(b, state),
                Node::Or(a, b) => eval(a, state) || eval(b, state),
            }
        }
        eval(&self.root, state)
    }

    /// Whether the expression names no task (empty `depends` and `dependencies`).
    pub fn is_empty(&self) -> bool {
        self.root == Node::Always
    }
}

impl fmt::Display for Depends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn w(n: &Node, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
            match n {
                Node::Always => Ok(()),
                Node::Bare(t) => write!(f, "{t}"),
                Node::Result(t, r) => write!(f, "{t}.{}", r.as_str()),
                Node::Not(a) => {
                    write!(f, "!")?;
                    w(a, f, 3)
                }
                Node::And(a, b) | Node::Or(a, b) => {
                    let (prec, op) = if matches!(n, Node::And(..)) {
                        (2, "&&")
                    } else {
                        (1, "||")
                    };
                    if parent > prec {
                        write!(f, "(")?;
                    }
                    w(a, f, prec)?;
                    write!(f, " {op} ")?;
                    w(b, f, prec)?;
                    if parent > prec {
                        write!(f, ")")?;
                    }
                    Ok(())
                }
            }
        }
        w(&self.root, f, 0)
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, position: usize, message: impl Into<String>) -> ExprError {
        ExprError::InvalidDepends {
            depends: self.s.to_string(),
            position,
            message: message.into(),
        }
    }
    fn ws(&mut self) {
        while self.s[self.pos..].starts_with(|c: char| c.is_whitespace()) {
            self.pos += self.s[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.pos..].starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    fn found(&self) -> String {
        match self.s[self.pos..].chars().next() {
            Some(c) => format!("found '{c}'"),
            None => "found end of expression".into(),
        }
    }
    fn or(&mut self) -> Result<Node, ExprError> {
        let mut l = self.and()?;
        while self.eat("||") {
            l = Node::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, ExprError> {
        let mut l = self.unary()?;
        while self.eat("&&") {
            l = Node::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat("!") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let n = self.or()?;
            if !self.eat(")") {
                return Err(self.err(
                    self.pos,
                    format!("expected '&&', '||' or ')', {}", self.found()),
                ));
            }
            return Ok(n);
        }
        self.ws();
        let start = self.pos;
        let name_len = self.s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(self.s.len() - start);
        if name_len == 0 {
            return Err(self.err(
                start,
                format!("expected a task name, '(' or '!', {}", self.found()),
            ));
        }
        let name = self.s[start..start + name_len].to_string();
        self.pos += name_len;
        if self.s[self.pos..].starts_with('.') {
            let rstart = self.pos + 1;
            let rlen = self.s[rstart..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(self.s.len() - rstart);
            let word = &self.s[rstart..rstart + rlen];
            let Some(r) = TaskResult::ALL.iter().find(|r| r.as_str() == word) else {
                return Err(self.err(
                    rstart,
                    if word.is_empty() {
                        "expected a task result after '.'".to_string()
                    } else {
                        format!("task result '{word}' for task '{name}' is invalid")
                    },
                ));
            };
            self.pos = rstart + rlen;
            return Ok(Node::Result(name, *r));
        }
        Ok(Node::Bare(name))
    }
}

/// Parse a `depends` expression. An empty (or all-whitespace) string names no task and
/// always holds.
pub fn parse(s: &str) -> Result<Depends, ExprError> {
    if s.trim().is_empty() {
        return Ok(Depends { root: Node::Always });
    }
    let mut p = Parser { s, pos: 0 };
    let root = p.or()?;
    p.ws();
    if p.pos != s.len() {
        return Err(p.err(
            p.pos,
            format!("expected '&&', '||' or end of expression, {}", p.found()),
        ));
    }
    Ok(Depends { root })
}

/// Argo's rule for legacy `dependencies: [A, B]`: `A && B` with each name bare (so it
/// expands to `(A.Succeeded || A.Skipped || A.Daemoned)`, plus continueOn results).
pub fn from_dependencies(names: &[String]) -> Depends {
    let root = names
        .iter()
        .map(|n| Node::Bare(n.clone()))
        .reduce(|a, b| Node::And(Box::new(a), Box::new(b)))
        .unwrap_or(Node::Always);
    Depends { root }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodePhase::*;

    fn states(name: &str) -> TaskState {
        match name {
            "A" => TaskState::phase(Succeeded),
            "B" => TaskState::phase(Failed),
            "C" => TaskState::phase(Skipped),
            "D" => TaskState::phase(Error),
            "step-1" => TaskState {
                phase: Running,
                daemoned: true,
                ..Default::default()
            },
            "loop" => TaskState {
                phase: Failed,
                children: Some(vec![Failed, Succeeded]),
                ..Default::default()
            },
            "allfail" => TaskState {
                phase: Failed,
                children: Some(vec![Failed, Failed]),
                ..Default::default()
            },
            "cont" => TaskState {
                phase: Failed,
                continue_on_failed: true,
                ..Default::default()
            },
            "conterr" => TaskState {
                phase: Error,
                continue_on_error: true,
                ..Default::default()
            },
            _ => TaskState::phase(Omitted),
        }
    }

    fn ev(s: &str) -> bool {
        parse(s).unwrap().evaluate(&states)
    }

    #[test]
    fn evaluation() {
        assert!(ev("A"));
        assert!(!ev("B"));
        assert!(ev("C"));
        assert!(ev("step-1"));
        assert!(ev("step-1.Daemoned"));
        assert!(ev("A && (B.Succeeded || C.Skipped) && !D.Succeeded"));
        assert!(ev("A && (B.Failed || C.Failed) && !D.Skipped"));
        assert!(ev("D.Errored"));
        assert!(!ev("A.Failed || B.Succeeded"));
        assert!(ev("loop.AnySucceeded"));
        assert!(!ev("loop.AllFailed"));
        assert!(ev("allfail.AllFailed && !allfail.AnySucceeded"));
        assert!(!ev("A.AnySucceeded"));
        assert!(ev("cont"));
        assert!(ev("conterr"));
        assert!(!ev("D"));
        assert!(ev("zzz.Omitted"));
        assert!(ev("!!A"));
        assert!(ev("A || B && C.Failed"));
        assert!(parse("").unwrap().evaluate(&states));
    }

    #[test]
    fn tasks_and_display() {
        let d =
            parse("A && (B.Succeeded || step-1.Failed) && !A.Skipped || x.AnySucceeded").unwrap();
        assert_eq!(d.tasks(), vec!["A", "B", "step-1", "x"]);
        assert_eq!(d.item_tasks(), vec!["x"]);
        assert_eq!(
            d.to_string(),
            "A && (B.Succeeded || step-1.Failed) && !A.Skipped || x.AnySucceeded"
        );
        assert!(parse(" ").unwrap().is_empty());
        assert_eq!(parse("!(A || B)").unwrap().to_string(), "!(A || B)");
    }

    #[test]
    fn dependencies_rule() {
        let d = from_dependencies(&["A".into(), "C".into()]);
        assert_eq!(d.to_string(), "A && C");
        assert_eq!(d, parse("A && C").unwrap());
        assert!(d.evaluate(&states));
        assert!(!from_dependencies(&["A".into(), "B".into()]).evaluate(&states));
        assert!(from_dependencies(&[]).is_empty());
    }

    #[test]
    fn errors() {
        let e = parse("A &&").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid depends expression 'A &&' at position 4: expected a task name, '(' or '!', found end of expression"
        );
        let e = parse("A.Succeded").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid depends expression 'A.Succeded' at position 2: task result 'Succeded' for task 'A' is invalid"
        );
        let e = parse("(A || B").unwrap_err();
        assert!(
            matches!(e, ExprError::InvalidDepends { position: 7, .. }),
            "{e}"
        );
        let e = parse("A B").unwrap_err();
        assert!(
            matches!(e, ExprError::InvalidDepends { position: 2, .. }),
            "{e}"
        );
        assert!(parse("A.").is_err());
        assert!(parse("A & B").is_err());
        assert!(parse("A || || B").is_err());
    }
}
