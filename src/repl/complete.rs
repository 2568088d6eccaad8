//! Completion and hints as pure functions: [`analyse`] finds what the cursor is in (a name, a
//! member after `.`, a string argument that expects a kind, namespace, object name or context,
//! a meta-command), and [`candidates`] asks [`Sources`] for the matching names.

use super::commands::COMMANDS;
use super::input::is_meta_command;
use super::lexer::{KEYWORDS, Token, TokenKind, significant, tokenize};

/// Live names a string argument can expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// Kubeconfig contexts (`cluster("`).
    Contexts,
    /// Resource kinds (`c.get("`).
    Kinds,
    Namespaces,
    /// Object names of a kind, in a namespace when one was given.
    Names {
        kind: String,
        namespace: Option<String>,
    },
}

/// What the cursor is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Nothing,
    /// `:he`
    Command,
    /// `:help sa`
    HelpTopic,
    /// `:load run` / `:save x`
    File,
    /// `:run pre`
    Step,
    /// `:plan o`
    Switch,
    /// A variable, function, keyword, or `alias::function`.
    Name,
    /// `pod.metadata.na`: keys and methods of what `receiver` evaluates to.
    Member {
        receiver: String,
    },
    /// A string argument; `receiver` is the expression the method is called on, if any.
    Live {
        what: Live,
        receiver: Option<String>,
    },
}

/// The word being completed: it starts at byte `start` and reads `prefix` so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub start: usize,
    pub prefix: String,
    pub want: Want,
}

/// One completion: what to insert and what to show in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub replacement: String,
    pub display: String,
}

/// A function as completion and hints show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// How scripts call it (`split_check`, `traffic::shift`).
    pub name: String,
    pub signature: String,
    /// The type of the first parameter (`Cluster`, `map`, `string`), for method completion.
    pub receiver: Option<String>,
    /// One of Rhai's own functions (`split`, `len`): offered as methods after `.`, not as
    /// names, where they would crowd out the host functions.
    pub builtin: bool,
}

/// Keys and methods of a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub keys: Vec<String>,
    pub methods: Vec<FunctionInfo>,
}

/// Where names come from. The REPL's implementation reads the scope, the reference and the
/// live-name cache; tests use fixed lists.
pub trait Sources {
    /// Every callable function (host, Rhai built-ins, imported stdlib, session-defined).
    fn functions(&self) -> Vec<FunctionInfo>;
    fn variables(&self) -> Vec<String>;
    /// Keys and methods of the value `receiver` evaluates to (without running anything).
    fn members(&self, receiver: &str) -> Members;
    /// Names from the clusters (cached; may be empty while a fetch is under way).
    fn live(&self, what: &Live, receiver: Option<&str>) -> Vec<String>;
    fn help_topics(&self) -> Vec<String>;
    fn steps(&self) -> Vec<String>;
}

/// Cluster methods whose first argument is a kind.
const KIND_FIRST: &[&str] = &[
    "get", "list", "wait", "delete", "patch", "label", "annotate", "restart",
];
/// Cluster methods taking (kind, name, namespace, ...).
const KIND_NAME_NAMESPACE: &[&str] = &[
    "get", "wait", "delete", "patch", "label", "annotate", "restart",
];
/// Cluster methods whose first argument is a namespace.
const NAMESPACE_FIRST: &[&str] = &[
    "pods",
    "injection_report",
    "wait_rollout",
    "service_address",
];

/// Finds what the cursor at byte `pos` of `line` is in.
pub fn analyse(line: &str, pos: usize) -> Request {
    let before = &line[..pos.min(line.len())];
    if is_meta_command(before) {
        return analyse_command(before);
    }
    let tokens = tokenize(before);
    if let Some(last) = tokens.last()
        && let TokenKind::Text {
            quote,
            closed: false,
        } = last.kind
        && quote != '\''
    {
        let start = last.start + 1;
        return Request {
            start,
            prefix: before[start..].to_string(),
            want: string_argument(before, &tokens[..tokens.len() - 1]),
        };
    }
    if tokens
        .last()
        .is_some_and(|t| matches!(t.kind, TokenKind::Comment | TokenKind::Text { .. }))
    {
        return nothing(pos);
    }
    let start = word_start(before);
    let prefix = before[start..].to_string();
    let want = match before[..start].strip_suffix('.') {
        Some(head) => match receiver_before(head) {
            Some(receiver) => Want::Member { receiver },
            None => Want::Nothing,
        },
        None if prefix.starts_with(|c: char| c.is_ascii_digit()) => Want::Nothing,
        None => Want::Name,
    };
    Request {
        start,
        prefix,
        want,
    }
}

fn nothing(pos: usize) -> Request {
    Request {
        start: pos,
        prefix: String::new(),
        want: Want::Nothing,
    }
}

fn analyse_command(before: &str) -> Request {
    let offset = before.len() - before.trim_start().len();
    let body = &before[offset + 1..];
    let Some((command, argument)) = body.split_once(' ') else {
        return Request {
            start: offset + 1,
            prefix: body.to_string(),
            want: Want::Command,
        };
    };
    let argument_start = before.len() - argument.trim_start().len();
    let want = match command {
        "help" | "h" => Want::HelpTopic,
        "load" | "save" | "save!" => Want::File,
        "run" | "run!" => Want::Step,
        "plan" => Want::Switch,
        _ => Want::Nothing,
    };
    Request {
        start: argument_start,
        prefix: before[argument_start..].to_string(),
        want,
    }
}

/// Where the identifier (with `::` paths) ending at the end of `text` starts.
fn word_start(text: &str) -> usize {
    text.char_indices()
        .rev()
        .take_while(|&(_, c)| c.is_alphanumeric() || c == '_' || c == ':')
        .last()
        .map_or(text.len(), |(i, _)| i)
}

/// The expression a `.` follows: names, `.`, `::` and balanced `(...)`/`[...]` groups
/// (`pods[0].metadata`, `cluster("a").get("Pod", "x")`). `None` for numbers and nothing.
pub fn receiver_before(text: &str) -> Option<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut index = chars.len();
    let mut start = text.len();
    while index > 0 {
        let (at, c) = chars[index - 1];
        if c.is_alphanumeric() || c == '_' || c == '.' || c == ':' {
            index -= 1;
        } else if c == ')' || c == ']' {
            index = matching_open(&chars, index - 1)?;
        } else {
            break;
        }
        start = chars.get(index).map_or(at, |&(i, _)| i);
    }
    let receiver = text[start..].trim_start_matches('.');
    let valid = !receiver.is_empty() && !receiver.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| receiver.to_string())
}

/// The index of the bracket opening the one closed at `close` (quotes inside are skipped).
fn matching_open(chars: &[(usize, char)], close: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for index in (0..=close).rev() {
        let c = chars[index].1;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '`' => quote = Some(c),
                ')' | ']' => depth += 1,
                '(' | '[' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(index);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// An open bracket while reading an input: its kind, position and the arguments so far.
#[derive(Debug, Clone)]
struct Frame {
    open: char,
    /// Index (in the significant tokens) of the opening bracket.
    token: usize,
    argument: usize,
    /// String literals given as arguments, by argument index.
    literals: Vec<Option<String>>,
    /// In a map literal: the key whose value is being written.
    key: Option<String>,
}

/// The brackets still open after `tokens` (significant tokens only), innermost last.
fn open_frames(text: &str, tokens: &[Token]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| tokens[i]);
        let next = tokens.get(index + 1);
        match token.kind {
            TokenKind::Punct(open @ ('(' | '[' | '{')) => frames.push(Frame {
                open,
                token: index,
                argument: 0,
                literals: Vec::new(),
                key: None,
            }),
            TokenKind::Punct(')' | ']' | '}') => {
                frames.pop();
            }
            TokenKind::Punct(',') => {
                if let Some(frame) = frames.last_mut() {
                    frame.argument += 1;
                    frame.key = None;
                }
            }
            TokenKind::Punct(':') => {
                let path = previous.is_some_and(|p| p.kind == TokenKind::Punct(':'))
                    || next.is_some_and(|n| n.kind == TokenKind::Punct(':'));
                if let (Some(frame), Some(previous), false) = (frames.last_mut(), previous, path)
                    && frame.open == '{'
                {
                    frame.key = Some(unquote(previous.text(text)));
                }
            }
            TokenKind::Text { closed: true, .. } => {
                if let Some(frame) = frames.last_mut() {
                    if frame.literals.len() <= frame.argument {
                        frame.literals.resize(frame.argument + 1, None);
                    }
                    frame.literals[frame.argument] = Some(unquote(token.text(text)));
                }
            }
            _ => {}
        }
    }
    frames
}

fn unquote(text: &str) -> String {
    text.trim_matches(|c| c == '"' || c == '`').to_string()
}

/// The call a `(` frame belongs to: (function name, receiver expression if a method call).
fn call_of(text: &str, tokens: &[Token], frame: &Frame) -> Option<(String, Option<String>)> {
    if frame.open != '(' {
        return None;
    }
    let name = tokens.get(frame.token.checked_sub(1)?)?;
    if name.kind != TokenKind::Identifier {
        return None;
    }
    let function = name.text(text).to_string();
    let receiver = text[..name.start]
        .strip_suffix('.')
        .and_then(receiver_before);
    Some((function, receiver))
}

/// What a string argument at the end of `text` expects, from the calls around it.
fn string_argument(text: &str, tokens: &[Token]) -> Want {
    let tokens = significant(tokens);
    let frames = open_frames(text, &tokens);
    let Some(frame) = frames.last() else {
        return Want::Nothing;
    };
    // `#{namespace: "` and `#{namespaces: ["` inside a method call.
    let map = match frame.open {
        '{' => Some(frame),
        '[' => frames
            .len()
            .checked_sub(2)
            .map(|i| &frames[i])
            .filter(|f| f.open == '{'),
        _ => None,
    };
    if let Some(map) = map
        && matches!(map.key.as_deref(), Some("namespace" | "namespaces"))
    {
        let receiver = frames
            .iter()
            .rev()
            .find_map(|f| call_of(text, &tokens, f))
            .and_then(|(_, receiver)| receiver);
        return Want::Live {
            what: Live::Namespaces,
            receiver,
        };
    }
    let Some((function, receiver)) = call_of(text, &tokens, frame) else {
        return Want::Nothing;
    };
    let literal = |index: usize| frame.literals.get(index).cloned().flatten();
    let what = match (function.as_str(), receiver.is_some(), frame.argument) {
        ("cluster", false, 0) => Live::Contexts,
        (method, true, 0) if KIND_FIRST.contains(&method) => Live::Kinds,
        (method, true, 0) if NAMESPACE_FIRST.contains(&method) => Live::Namespaces,
        (method, true, 1) if KIND_NAME_NAMESPACE.contains(&method) => Live::Names {
            kind: match literal(0) {
                Some(kind) => kind,
                None => return Want::Nothing,
            },
            namespace: None,
        },
        (method, true, 2) if KIND_NAME_NAMESPACE.contains(&method) => Live::Namespaces,
        ("service_address", true, 1) => Live::Names {
            kind: "Service".into(),
            namespace: literal(0),
        },
        _ => return Want::Nothing,
    };
    Want::Live { what, receiver }
}

/// The completions for a request, sorted, without duplicates.
pub fn candidates(request: &Request, sources: &dyn Sources) -> Vec<Candidate> {
    let prefix = request.prefix.as_str();
    let found: Vec<Candidate> = match &request.want {
        Want::Nothing | Want::File => Vec::new(),
        Want::Command => COMMANDS
            .iter()
            .map(|c| plain_with(c.name, &format!(":{} {}", c.name, c.usage)))
            .collect(),
        Want::HelpTopic => sources.help_topics().into_iter().map(plain).collect(),
        Want::Step => sources.steps().into_iter().map(plain).collect(),
        Want::Switch => vec![plain("on".into()), plain("off".into())],
        Want::Name => names(sources),
        // Keys first, then methods: what a value holds matters more than what it can do.
        Want::Member { receiver } => {
            let members = sources.members(receiver);
            let keys: Vec<Candidate> = members.keys.iter().cloned().map(plain).collect();
            let methods: Vec<Candidate> = members.methods.iter().map(function_candidate).collect();
            return [keys, methods]
                .into_iter()
                .flat_map(|group| matching(group, prefix))
                .collect();
        }
        Want::Live { what, receiver } => sources
            .live(what, receiver.as_deref())
            .into_iter()
            .map(plain)
            .collect(),
    };
    matching(found, prefix)
}

/// The candidates starting with `prefix`, sorted, one per name.
fn matching(mut found: Vec<Candidate>, prefix: &str) -> Vec<Candidate> {
    found.retain(|c| c.replacement.starts_with(prefix));
    found.sort_by(|a, b| a.replacement.cmp(&b.replacement));
    found.dedup_by(|a, b| a.replacement == b.replacement);
    found
}

fn plain(name: String) -> Candidate {
    Candidate {
        display: name.clone(),
        replacement: name,
    }
}

fn plain_with(name: &str, display: &str) -> Candidate {
    Candidate {
        replacement: name.to_string(),
        display: display.to_string(),
    }
}

/// Functions offered where a name is typed: not Rhai's built-ins (methods in practice), and
/// not the host overloads of keywords such as `print` (the keyword is offered instead).
fn is_name_candidate(function: &FunctionInfo) -> bool {
    !function.builtin && !KEYWORDS.contains(&function.name.as_str())
}

fn function_candidate(function: &FunctionInfo) -> Candidate {
    plain_with(&function.name, &function.signature)
}

fn names(sources: &dyn Sources) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = sources.variables().into_iter().map(plain).collect();
    found.extend(
        sources
            .functions()
            .iter()
            .filter(|f| is_name_candidate(f))
            .map(function_candidate),
    );
    found.extend(KEYWORDS.iter().map(|k| plain(k.to_string())));
    found
}

/// The hint shown after the cursor: the signature of the call being typed, or the rest of
/// the only function or variable that starts with the word being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub display: String,
    /// What the right arrow inserts.
    pub completion: Option<String>,
}

/// The hint for the cursor at the end of `line` (none elsewhere).
pub fn hint(line: &str, pos: usize, sources: &dyn Sources) -> Option<Hint> {
    if pos < line.len() || is_meta_command(line) {
        return None;
    }
    let request = analyse(line, pos);
    if request.want == Want::Name
        && request.prefix.len() >= 2
        && let Some(hint) = rest_of_name(&request.prefix, sources)
    {
        return Some(hint);
    }
    let tokens = tokenize(line);
    if tokens
        .last()
        .is_some_and(|t| matches!(t.kind, TokenKind::Comment))
    {
        return None;
    }
    let tokens = significant(&tokens);
    let frames = open_frames(line, &tokens);
    let (frame, (function, receiver)) = frames
        .iter()
        .rev()
        .find_map(|f| Some((f, call_of(line, &tokens, f)?)))?;
    let typed = tokens
        .last()
        .is_some_and(|t| t.start > tokens[frame.token].start);
    let overloads = match &receiver {
        Some(receiver) => sources.members(receiver).methods,
        None => Vec::new(),
    };
    let overloads = if overloads.iter().any(|f| f.name == function) {
        overloads
    } else {
        sources.functions()
    };
    let argument = frame.argument + usize::from(receiver.is_some());
    signature_hint(&function, &overloads, argument, typed)
}

fn rest_of_name(prefix: &str, sources: &dyn Sources) -> Option<Hint> {
    let functions = sources.functions();
    let mut matching: Vec<&FunctionInfo> = functions
        .iter()
        .filter(|f| is_name_candidate(f) && f.name.starts_with(prefix) && f.name != prefix)
        .collect();
    matching.dedup_by(|a, b| a.name == b.name);
    let variables: Vec<String> = sources
        .variables()
        .into_iter()
        .filter(|v| v.starts_with(prefix))
        .collect();
    match (matching.as_slice(), variables.is_empty()) {
        ([only], true) => {
            let rest = only.name[prefix.len()..].to_string();
            Some(Hint {
                display: format!("{rest}  {}", only.signature),
                completion: Some(rest),
            })
        }
        _ => None,
    }
}

/// The signature of the overload that fits the argument being typed: the one with the fewest
/// parameters that still has a place for it (a method's receiver counts as the first).
fn signature_hint(
    function: &str,
    functions: &[FunctionInfo],
    argument: usize,
    typed: bool,
) -> Option<Hint> {
    let mut overloads: Vec<&FunctionInfo> = functions
        .iter()
        .filter(|f| f.name == function || f.name.rsplit("::").next() == Some(function))
        .collect();
    overloads.sort_by_key(|f| parameter_count(&f.signature));
    overloads.dedup_by(|a, b| a.signature == b.signature);
    let needed = argument + usize::from(typed);
    let best = overloads
        .iter()
        .find(|f| parameter_count(&f.signature) >= needed)
        .or(overloads.last())?;
    let more = match overloads.len() {
        1 => String::new(),
        n => format!("  (+{} more)", n - 1),
    };
    Some(Hint {
        display: format!("  {}{more}", best.signature),
        completion: None,
    })
}

/// How many parameters `name(a: x, b: y) -> z` has.
fn parameter_count(signature: &str) -> usize {
    let parameters = signature
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or("", |(inside, _)| inside);
    match parameters.trim() {
        "" => 0,
        list => list.split(',').count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(line: &str) -> (String, Want) {
        let request = analyse(line, line.len());
        (request.prefix, request.want)
    }

    fn live(what: Live, receiver: &str) -> Want {
        Want::Live {
            what,
            receiver: Some(receiver.to_string()),
        }
    }

    #[test]
    fn names_members_and_commands() {
        assert_eq!(want("let x = spl"), ("spl".into(), Want::Name));
        assert_eq!(want("traffic::sh"), ("traffic::sh".into(), Want::Name));
        assert_eq!(
            want("print(pod.metadata.na"),
            (
                "na".into(),
                Want::Member {
                    receiver: "pod.metadata".into()
                }
            )
        );
        assert_eq!(
            want("pods[0].metadata."),
            (
                "".into(),
                Want::Member {
                    receiver: "pods[0].metadata".into()
                }
            )
        );
        assert_eq!(
            want("cluster(\"a\").li"),
            (
                "li".into(),
                Want::Member {
                    receiver: "cluster(\"a\")".into()
                }
            )
        );
        assert_eq!(want("1.5").1, Want::Nothing);
        assert_eq!(want(":he"), ("he".into(), Want::Command));
        assert_eq!(want(":help sam"), ("sam".into(), Want::HelpTopic));
        assert_eq!(want(":run pre"), ("pre".into(), Want::Step));
        assert_eq!(want("// note"), ("".into(), Want::Nothing));
    }

    #[test]
    fn string_arguments_expect_live_names() {
        assert_eq!(
            want("cluster(\"real-s"),
            (
                "real-s".into(),
                Want::Live {
                    what: Live::Contexts,
                    receiver: None
                }
            )
        );
        assert_eq!(want("c.get(\"Dep"), ("Dep".into(), live(Live::Kinds, "c")));
        assert_eq!(
            want("source.get(\"Deployment\", \"rev"),
            (
                "rev".into(),
                live(
                    Live::Names {
                        kind: "Deployment".into(),
                        namespace: None
                    },
                    "source"
                )
            )
        );
        assert_eq!(
            want("c.get(\"Deployment\", \"reviews\", \"book"),
            ("book".into(), live(Live::Namespaces, "c"))
        );
        assert_eq!(
            want("cluster(\"a\").pods(\"kube-"),
            ("kube-".into(), live(Live::Namespaces, "cluster(\"a\")"))
        );
        assert_eq!(
            want("c.list(\"Pod\", #{labels: \"a=b\", namespace: \"bo"),
            ("bo".into(), live(Live::Namespaces, "c"))
        );
        assert_eq!(
            want("c.export_objects(#{namespaces: [\"a\", \"b"),
            ("b".into(), live(Live::Namespaces, "c"))
        );
        assert_eq!(
            want("c.service_address(\"istio-system\", \"istio-"),
            (
                "istio-".into(),
                live(
                    Live::Names {
                        kind: "Service".into(),
                        namespace: Some("istio-system".into())
                    },
                    "c"
                )
            )
        );
        assert_eq!(want("print(\"hel"), ("hel".into(), Want::Nothing));
        assert_eq!(want("let s = \"abc"), ("abc".into(), Want::Nothing));
    }

    struct Fixed;

    impl Sources for Fixed {
        fn functions(&self) -> Vec<FunctionInfo> {
            [
                "split_check(counts: map, weights: map, settings: map) -> map",
                "sample(url: string) -> map",
                "sample(url: string, options: map) -> map",
                "sleep(seconds: int)",
            ]
            .iter()
            .map(|s| FunctionInfo {
                name: s.split('(').next().unwrap().to_string(),
                signature: s.to_string(),
                receiver: None,
                builtin: false,
            })
            .collect()
        }
        fn variables(&self) -> Vec<String> {
            vec!["source".into(), "samples".into()]
        }
        fn members(&self, receiver: &str) -> Members {
            match receiver {
                "pod.metadata" => Members {
                    keys: vec!["name".into(), "labels".into(), "namespace".into()],
                    methods: vec![
                        FunctionInfo {
                            name: "len".into(),
                            signature: "len(map: map) -> int".into(),
                            receiver: Some("map".into()),
                            builtin: true,
                        },
                        FunctionInfo {
                            name: "keys".into(),
                            signature: "keys(map: map) -> array".into(),
                            receiver: Some("map".into()),
                            builtin: true,
                        },
                    ],
                },
                _ => Members::default(),
            }
        }
        fn live(&self, what: &Live, _: Option<&str>) -> Vec<String> {
            match what {
                Live::Namespaces => {
                    vec!["kube-system".into(), "kube-public".into(), "default".into()]
                }
                _ => vec![],
            }
        }
        fn help_topics(&self) -> Vec<String> {
            vec!["sample".into(), "split_check".into()]
        }
        fn steps(&self) -> Vec<String> {
            vec![]
        }
    }

    fn complete(line: &str) -> Vec<String> {
        candidates(&analyse(line, line.len()), &Fixed)
            .into_iter()
            .map(|c| c.replacement)
            .collect()
    }

    #[test]
    fn candidates_match_the_prefix() {
        assert_eq!(complete("spl"), vec!["split_check"]);
        assert_eq!(complete("sa"), vec!["sample", "samples"]);
        assert_eq!(complete("pod.metadata.na"), vec!["name", "namespace"]);
        assert_eq!(
            complete("pod.metadata."),
            vec!["labels", "name", "namespace", "keys", "len"]
        );
        assert_eq!(complete("c.pods(\"kube-p"), vec!["kube-public"]);
        assert_eq!(complete(":pl"), vec!["plan"]);
        let display = candidates(&analyse("spl", 3), &Fixed)[0].display.clone();
        assert_eq!(
            display,
            "split_check(counts: map, weights: map, settings: map) -> map"
        );
    }

    #[test]
    fn hints_show_signatures_and_the_rest_of_a_name() {
        assert_eq!(
            hint("let s = sample(\"http://x\", ", 27, &Fixed),
            Some(Hint {
                display: "  sample(url: string, options: map) -> map  (+1 more)".into(),
                completion: None
            })
        );
        assert_eq!(
            hint("split_c", 7, &Fixed),
            Some(Hint {
                display: "heck  split_check(counts: map, weights: map, settings: map) -> map"
                    .into(),
                completion: Some("heck".into())
            })
        );
        assert_eq!(
            hint("sample(", 7, &Fixed).unwrap().display,
            "  sample(url: string) -> map  (+1 more)"
        );
        let line = "sample(\"http://x\", #{";
        assert_eq!(
            hint(line, line.len(), &Fixed).unwrap().display,
            "  sample(url: string, options: map) -> map  (+1 more)"
        );
        assert_eq!(hint("sa", 2, &Fixed), None);
        assert_eq!(hint("sleep(1); x", 11, &Fixed), None);
    }
}
