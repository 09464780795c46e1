//! One test per tier, and the refusals each must make.

use super::*;

fn apply(text: &str, search: &str, replace: &str) -> Result<(String, MatchKind), MatchError> {
    apply_block(text, search, replace, "f")
}

#[test]
fn exact_lines_are_tier_one_and_never_land_mid_line() {
    let text = "fn a() {}\nfn b() {}\nfn a() {}\n";
    assert_eq!(
        apply(text, "fn b() {}\n", "fn c() {}\n").unwrap(),
        (
            "fn a() {}\nfn c() {}\nfn a() {}\n".to_string(),
            MatchKind::Exact
        )
    );
    assert_eq!(
        apply(text, "fn a() {}\n", ""),
        Err(MatchError::Ambiguous {
            path: "f".into(),
            lines: vec![1, 3]
        })
    );
    // `x = 1` is inside `max = 1`, but a SEARCH matches whole lines.
    assert!(matches!(
        apply("max = 1\n", "x = 1\n", "x = 2\n"),
        Err(MatchError::NotFound { .. })
    ));
}

#[test]
fn trailing_whitespace_is_tier_two() {
    let text = "def f():   \n    return 1\n\nprint(f())";
    let (out, kind) = apply(text, "def f():\n    return 1\n", "def f():\n    return 2\n").unwrap();
    assert_eq!(kind, MatchKind::TrailingWhitespace);
    assert_eq!(out, "def f():\n    return 2\n\nprint(f())");
    // The last line without a newline keeps having none.
    let (out, _) = apply("a\nb  ", "b\n", "c\n").unwrap();
    assert_eq!(out, "a\nc");
}

#[test]
fn crlf_files_match_lf_answers_and_keep_their_line_ends() {
    let (out, kind) = apply("a\r\nb\r\n", "b\n", "c\nd\n").unwrap();
    assert_eq!(kind, MatchKind::Exact);
    assert_eq!(out, "a\r\nc\r\nd\r\n");
}

#[test]
fn a_uniform_indentation_shift_is_tier_three_and_shifts_the_replace() {
    let text = "class A:\n    def f(self):\n        return 1\n";
    // Written without the class's indentation.
    let (out, kind) = apply(
        text,
        "def f(self):\n    return 1\n",
        "def f(self):\n    x = 2\n    return x\n",
    )
    .unwrap();
    assert_eq!(kind, MatchKind::Indentation);
    assert_eq!(
        out,
        "class A:\n    def f(self):\n        x = 2\n        return x\n"
    );
    // Written one level too deep.
    let (out, _) = apply(
        text,
        "        def f(self):\n            return 1\n",
        "        def f(self):\n            return 3\n",
    )
    .unwrap();
    assert_eq!(out, "class A:\n    def f(self):\n        return 3\n");
}

#[test]
fn tabs_written_as_spaces_are_turned_back() {
    let text = "func f() {\n\tif x {\n\t\treturn 1\n\t}\n}\n";
    let (out, kind) = apply(
        text,
        "    if x {\n        return 1\n",
        "    if x {\n        log()\n        return 1\n",
    )
    .unwrap();
    assert_eq!(kind, MatchKind::Indentation);
    assert_eq!(
        out,
        "func f() {\n\tif x {\n\t\tlog()\n\t\treturn 1\n\t}\n}\n"
    );
}

#[test]
fn an_indentation_that_is_not_uniform_is_refused() {
    let text = "def f():\n    a = 1\n    b = 2\n";
    // The second line keeps its depth, the third does not: Python would change meaning.
    assert!(matches!(
        apply(text, "def f():\n    a = 1\nb = 2\n", "x\n"),
        Err(MatchError::NotFound { .. })
    ));
}

#[test]
fn the_same_lines_at_two_depths_are_ambiguous_when_shifted() {
    let text = "if a:\n    go()\nif b:\n        go()\n";
    assert!(matches!(
        apply(text, "  go()\n", "stop()\n"),
        Err(MatchError::Ambiguous { .. })
    ));
}

#[test]
fn blank_lines_dropped_or_doubled_are_tier_four() {
    let text = "a = 1\n\nb = 2\nc = 3\n";
    let (out, kind) = apply(text, "a = 1\nb = 2\n", "a = 1\n\nb = 20\n").unwrap();
    assert_eq!(kind, MatchKind::BlankLines);
    assert_eq!(out, "a = 1\n\nb = 20\nc = 3\n");
    let (out, kind) = apply(text, "a = 1\n\n\nb = 2\n", "a = 1\n\nb = 21\n").unwrap();
    assert_eq!(kind, MatchKind::BlankLines);
    assert_eq!(out, "a = 1\n\nb = 21\nc = 3\n");
}

#[test]
fn reordered_lines_match_no_tier() {
    let text = "a = 1\nb = 2\nc = 3\n";
    assert!(matches!(
        apply(text, "b = 2\na = 1\n", "x\n"),
        Err(MatchError::NotFound { .. })
    ));
}

#[test]
fn an_elision_between_exact_anchors_is_tier_five() {
    let text =
        "fn f() {\n    let a = 1;\n    let b = 2;\n    let c = 3;\n    a + b + c\n}\n\nfn g() {}\n";
    // `...` only in SEARCH: the REPLACE is the whole new span.
    let (out, kind) = apply(
        text,
        "fn f() {\n    let a = 1;\n    // ...\n    a + b + c\n}\n",
        "fn f() {\n    7\n}\n",
    )
    .unwrap();
    assert_eq!(kind, MatchKind::Elision);
    assert_eq!(out, "fn f() {\n    7\n}\n\nfn g() {}\n");
    // `...` in both: what it stands for is kept.
    let (out, _) = apply(
        text,
        "fn f() {\n    let a = 1;\n    ...\n    a + b + c\n}\n",
        "fn f() {\n    let a = 10;\n    ...\n    a + b + c\n}\n",
    )
    .unwrap();
    assert_eq!(
        out,
        "fn f() {\n    let a = 10;\n    let b = 2;\n    let c = 3;\n    a + b + c\n}\n\nfn g() {}\n"
    );
}

#[test]
fn unsafe_elisions_are_refused() {
    let text = "fn f() {\n    one();\n}\n\nfn g() {\n    two();\n}\n";
    // Nothing after the `...`: where it ends is unknown.
    assert!(matches!(
        apply(text, "fn f() {\n    ...\n", "x\n"),
        Err(MatchError::Elision { .. })
    ));
    // The closing line occurs twice after the opening one.
    assert!(matches!(
        apply(text, "fn f() {\n...\n}\n", "x\n"),
        Err(MatchError::Elision { .. })
    ));
    // From inside f into g: the lines between are shallower than the anchors.
    assert!(matches!(
        apply(text, "    one();\n    ...\n    two();\n", "x\n"),
        Err(MatchError::Elision { .. })
    ));
    // From one method's header into the body of the next.
    let methods = "impl S {\n    fn a() {\n        one();\n    }\n\n    fn b() {\n        let x = 1;\n        two();\n    }\n}\n";
    assert!(matches!(
        apply(
            methods,
            "    fn a() {\n    ...\n        two();\n    }\n",
            "x\n"
        ),
        Err(MatchError::Elision { .. })
    ));
    // A `...` stands for at least one line: the nearer `}` right after the head is no place.
    let nested = "fn f() {\n    if x {\n    }\n}\n";
    assert!(matches!(
        apply(nested, "    if x {\n...\n    }\n}\n", "y\n"),
        Err(MatchError::NotFound { .. })
    ));
    // A different number of `...` lines in REPLACE.
    assert!(matches!(
        apply(
            text,
            "fn f() {\n    ...\n    one();\n",
            "a\n...\nb\n...\nc\n"
        ),
        Err(MatchError::Elision { .. })
    ));
}

#[test]
fn a_real_ellipsis_line_matches_exactly_first() {
    let text = "def stub():\n    ...\n";
    let (out, kind) = apply(
        text,
        "def stub():\n    ...\n",
        "def stub():\n    return 1\n",
    )
    .unwrap();
    assert_eq!(kind, MatchKind::Exact);
    assert_eq!(out, "def stub():\n    return 1\n");
}

#[test]
fn elision_markers_are_recognised() {
    for marker in [
        "...",
        "    // ...",
        "# ... existing code ...",
        "/* ... */",
        "…",
        "<!-- ... -->",
    ] {
        assert!(is_elision(marker), "{marker}");
    }
    for code in ["...args)", "x = ...", "// see ...foo()", "print('...')"] {
        assert!(!is_elision(code), "{code}");
    }
}

#[test]
fn a_miss_names_the_closest_region() {
    let text = "fn a() {\n    one();\n}\n\nfn b() {\n    two();\n}\n";
    let Err(MatchError::NotFound {
        closest: Some(region),
        ..
    }) = apply(text, "fn b() {\n    twoo();\n}\n", "x\n")
    else {
        panic!("expected a miss with a region");
    };
    assert!(region.text.contains("    two();"));
    assert!(region.first_line <= 5 && region.last_line >= 7);
}

#[test]
fn append_adds_a_line_end_first() {
    assert_eq!(append("a", "b\n"), "a\nb\n");
    assert_eq!(append("a\r\n", "\nb\n"), "a\r\n\r\nb\r\n");
}
