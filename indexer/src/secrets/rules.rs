//! The rule set: one entry per secret format, as data.
//!
//! Each rule names a format (`aws-access-key`), the keywords whose presence lets its pattern
//! run at all (lowercase; a file holding none of a rule's keywords is never matched against
//! it), the pattern, which capture group holds the secret itself, and a check the captured
//! text must pass. The formats follow what the public secret scanners document (prefixed
//! tokens, key blocks, assignments to secret-named variables); patterns are written here.

/// What a captured candidate must satisfy beyond the pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Check {
    /// The pattern is specific enough (a fixed prefix and length).
    Format,
    /// A key block: its body holds a long run of base64.
    KeyBlock,
    /// A value assigned to a secret-looking name: no placeholder, no reference, mixed
    /// character classes and enough entropy.
    Assigned,
    /// Random-looking: at least this many bits of entropy per character.
    Entropy(f32),
}

/// One secret format.
pub(crate) struct Rule {
    /// Name shown in the redaction marker and counted by `quarry status`.
    pub(crate) id: &'static str,
    /// Lowercase literals of which one must occur for the pattern to be tried.
    pub(crate) keywords: &'static [&'static str],
    /// The regular expression.
    pub(crate) pattern: &'static str,
    /// Capture groups that may hold the secret, first participating one wins (0: the match).
    pub(crate) groups: &'static [usize],
    /// What the captured text must satisfy.
    pub(crate) check: Check,
    /// Only in data files: in code the same shape is a variable assigned a variable.
    pub(crate) data_only: bool,
}

/// Names a secret is assigned to (`password`, `db_passwd`, `API_KEY`, `clientSecret`,
/// `SECRET_KEY`, `password2`), as a pattern literal so rules can `concat!` it. The secret
/// word ends the name: `password_change_template`, `tokens` and `token_type` hold no secret.
macro_rules! secret_name {
    () => {
        r"[A-Za-z0-9_.\-]*(?i:password|passwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?)(?i:[_\-]?key)?[0-9]*"
    };
}

const NAME_KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "authkey",
    "auth_key",
    "auth-key",
    "privatekey",
    "private_key",
    "private-key",
    "credential",
];

/// Every rule, most specific first: where two rules claim overlapping text, the earlier wins.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "private-key",
            keywords: &["private key"],
            // Any header (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK), any indentation,
            // raw lines or `\n`-escaped inside a JSON or code string, string pieces
            // concatenated across lines: the body holds only what such a key can hold.
            pattern: r#"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s"'\\,:.\-]*?-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"#,
            groups: &[0],
            check: Check::KeyBlock,
            data_only: false,
        },
        Rule {
            id: "aws-access-key",
            keywords: &["akia", "asia", "abia", "acca", "a3t"],
            pattern: r"\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "aws-secret-key",
            keywords: &["aws"],
            pattern: r#"(?i:aws)[A-Za-z0-9_.\-]{0,40}["']?[ \t]*(?::=|=>|[:=])[ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            groups: &[1],
            check: Check::Entropy(3.5),
            data_only: false,
        },
        Rule {
            id: "github-token",
            keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            pattern: r"\b(gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "gitlab-token",
            keywords: &["glpat-"],
            pattern: r"\b(glpat-[A-Za-z0-9_\-]{20,64})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "stripe-key",
            keywords: &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
            pattern: r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247})\b",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "slack-token",
            keywords: &[
                "xoxa-",
                "xoxb-",
                "xoxp-",
                "xoxo-",
                "xoxs-",
                "xoxr-",
                "hooks.slack.com",
            ],
            pattern: r"\b(xox[abposr]-[A-Za-z0-9\-]{10,250}|https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,120})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "anthropic-key",
            keywords: &["sk-ant-"],
            pattern: r"\b(sk-ant-[a-z0-9]{2,12}-[A-Za-z0-9_\-]{32,200})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "openai-key",
            keywords: &["t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"],
            pattern: r"\b(sk-[A-Za-z0-9_\-]{0,40}T3BlbkFJ[A-Za-z0-9_\-]{16,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{32,})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "google-api-key",
            keywords: &["aiza"],
            pattern: r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "npm-token",
            keywords: &["npm_"],
            pattern: r"\b(npm_[A-Za-z0-9]{36})\b",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "pypi-token",
            keywords: &["pypi-ageichlwas5vcmc"],
            pattern: r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{40,})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "sendgrid-key",
            keywords: &["sg."],
            pattern: r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "jwt",
            keywords: &["eyj"],
            pattern: r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "url-password",
            keywords: &["://"],
            pattern: r#"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s/:@'"`<>]{1,64}:([^\s/@'"`<>]{3,128})@[A-Za-z0-9\[]"#,
            groups: &[1],
            check: Check::Assigned,
            data_only: false,
        },
        Rule {
            id: "netrc-password",
            keywords: &["machine"],
            pattern: r"(?m)^\s*machine\s+\S+(?:\s+login\s+\S+)?\s+password\s+(\S+)",
            groups: &[1],
            check: Check::Format,
            data_only: false,
        },
        Rule {
            id: "password-assignment",
            keywords: NAME_KEYWORDS,
            // `name = "value"`, `"name": 'value'`, `name: "value"`, `name => "value"`,
            // `name := "value"`, `--name "value"`; the value quoted, on one line.
            pattern: concat!(
                secret_name!(),
                r#"["'\]]{0,2}[ \t]*(?::=|=>|==|[:=]|[ \t])[ \t]*[rbuf]?(?:"([^"\r\n]{4,256})"|'([^'\r\n]{4,256})')"#
            ),
            groups: &[1, 2],
            check: Check::Assigned,
            data_only: false,
        },
        Rule {
            id: "password-assignment",
            keywords: NAME_KEYWORDS,
            // Unquoted at the end of a line: YAML (`POSTGRES_PASSWORD: s3cr3t`), env lists
            // (`- DB_PASSWORD=s3cr3t`), INI and properties files.
            pattern: concat!(
                r"(?m)^[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?",
                secret_name!(),
                r"[ \t]*[:=][ \t]*([A-Za-z0-9!@$%^&*+/=~._\-]{6,256})[ \t]*\r?$"
            ),
            groups: &[1],
            check: Check::Assigned,
            data_only: true,
        },
    ]
}
