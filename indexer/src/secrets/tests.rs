//! One case per rule, the false positives that matter in code, and line preservation.
//! Secrets are assembled at run time so no literal token sits in the repository.

use super::*;

fn pem_body() -> String {
    "MIIEowIBAAKCAQEAx7Yq3s9Kd2Lw0pZ4vQ1m8N5rT6uB2cD3eF4gH5iJ6kL7mN8o".to_string()
}

fn pem(indent: &str) -> String {
    let dash = "-".repeat(5);
    format!(
        "{dash}BEGIN RSA PRIVATE KEY{dash}\n{indent}{body}\n{indent}{body}\n{indent}{dash}END RSA PRIVATE KEY{dash}",
        body = pem_body()
    )
}

/// (rule, text holding the secret, the secret itself) for every rule.
fn cases() -> Vec<(&'static str, String, String)> {
    let aws_id = format!("AKIA{}", "Q3RZ7XKJ2M4PLW5N");
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Jd3kPq9".to_string();
    let gh = format!(
        "ghp_{}",
        "a1B2c3D4e5".repeat(4).chars().take(36).collect::<String>()
    );
    let stripe = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
    let slack = format!("xoxb-{}", "2210-1337-Zx9QwErTyUiOp");
    let google = format!("AIza{}", "SyD3xAmPl3k3yH3r3_0123456789abcdEFG");
    let npm = format!("npm_{}", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7C");
    let gitlab = format!("glpat-{}", "x7Kq2Lm9Pz4Rt6Vw8Yb1");
    let openai = format!("sk-proj-{}", "Zq8xK2mL9pR4tV6wY1bC3dF5gH7jN0sA2eI4oU6y");
    let anthropic = format!(
        "sk-ant-api03-{}",
        "Qw3rTy7uIo9pAs2dFg4hJk6lZx8cVb1nMq5wEr7tYu9i"
    );
    let jwt = format!(
        "eyJ{}.eyJ{}.{}",
        "hbGciOiJIUzI1NiJ9",
        "zdWIiOiIxMjM0NTY3ODkwIn0",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    );
    let sendgrid = format!(
        "SG.{}.{}",
        "ngeVfQFYQlKU0ufo8x5d1A", "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"
    );
    let pypi = format!(
        "pypi-AgEIcHlwaS5vcmc{}",
        "CJGQ0ZDg4ZTRiLTM5NjktNDM1Mi1hYjU3LTRlOGNlNzYyNjU2MwACKl"
    );
    vec![
        (
            "private-key",
            format!("KEY = \"\"\"\n    {}\n\"\"\"\n", pem("    ")),
            pem_body(),
        ),
        (
            "private-key",
            format!("{{\"private_key\": \"{}\"}}", pem("").replace('\n', "\\n")),
            pem_body(),
        ),
        (
            "aws-access-key",
            format!("AWS_ACCESS_KEY_ID = \"{aws_id}\"\n"),
            aws_id,
        ),
        (
            "aws-secret-key",
            format!("aws_secret_access_key = \"{aws_secret}\"\n"),
            aws_secret.clone(),
        ),
        ("github-token", format!("client = Github(\"{gh}\")\n"), gh),
        (
            "stripe-key",
            format!("stripe.api_key = '{stripe}'\n"),
            stripe,
        ),
        ("slack-token", format!("let t = \"{slack}\";\n"), slack),
        (
            "google-api-key",
            format!("const key = \"{google}\";\n"),
            google,
        ),
        ("npm-token", format!("TOKEN={npm}\n"), npm),
        (
            "gitlab-token",
            format!("headers = {{\"PRIVATE-TOKEN\": \"{gitlab}\"}}\n"),
            gitlab,
        ),
        (
            "openai-key",
            format!("client = OpenAI(api_key=\"{openai}\")\n"),
            openai,
        ),
        ("anthropic-key", format!("key: {anthropic}\n"), anthropic),
        ("jwt", format!("Authorization: Bearer {jwt}\n"), jwt),
        (
            "sendgrid-key",
            format!("SENDGRID = \"{sendgrid}\"\n"),
            sendgrid,
        ),
        ("pypi-token", format!("password = {pypi}\n"), pypi),
        (
            "url-password",
            "DATABASE_URL = \"postgres://app:Pg5ecr3t9x@db.internal:5432/app\"\n".to_string(),
            "Pg5ecr3t9x".to_string(),
        ),
        (
            "netrc-password",
            "machine api.example.com login bot password N3trcPassw0rd\n".to_string(),
            "N3trcPassw0rd".to_string(),
        ),
        (
            "password-assignment",
            "DB_PASSWORD = \"Tr0ub4dor&3x\"\n".to_string(),
            "Tr0ub4dor&3x".to_string(),
        ),
        (
            "password-assignment",
            "SECRET_KEY = 'django-insecure-9x!k2#q'\n".to_string(),
            "django-insecure-9x!k2#q".to_string(),
        ),
        (
            "password-assignment",
            "    \"client_secret\": 'q8Wm2Zr7Kx5V'\n".to_string(),
            "q8Wm2Zr7Kx5V".to_string(),
        ),
        (
            "password-assignment",
            "  environment:\n    - POSTGRES_PASSWORD=hunter2pw\n".to_string(),
            "hunter2pw".to_string(),
        ),
        (
            "password-assignment",
            "    POSTGRES_PASSWORD: c0mp0seS3cret\n".to_string(),
            "c0mp0seS3cret".to_string(),
        ),
    ]
}

#[test]
fn every_rule_finds_its_secret_and_redaction_removes_it() {
    for (rule, text, secret) in cases() {
        let redacted = redact(&text, TextKind::Data);
        assert!(
            !redacted.text.contains(&secret),
            "{rule}: secret survived in {:?}",
            redacted.text
        );
        assert!(
            redacted.text.contains(&marker(rule)),
            "{rule}: no marker in {:?}",
            redacted.text
        );
        assert_eq!(
            redacted.counts.get(rule),
            Some(&1),
            "{rule}: {:?}",
            redacted.counts
        );
        assert_eq!(
            redacted.text.lines().count(),
            text.lines().count(),
            "{rule}: lines moved"
        );
    }
}

#[test]
fn secrets_in_code_are_found_in_each_language() {
    let token = format!("ghp_{}", "Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234567");
    for (path, source) in [
        ("client.py", format!("TOKEN = \"{token}\"\n")),
        ("client.rs", format!("const TOKEN: &str = \"{token}\";\n")),
        ("client.ts", format!("export const token = '{token}';\n")),
        ("client.go", format!("var token = \"{token}\"\n")),
    ] {
        let redacted = redact(&source, TextKind::of_path(path));
        assert!(!redacted.text.contains(&token), "{path}: {}", redacted.text);
    }
}

#[test]
fn code_that_only_names_secrets_is_left_alone() {
    for text in [
        "password = request.POST['password']\n",
        "token = self._token\n",
        "secret_key = settings.SECRET_KEY\n",
        "api_key_env = \"OPENAI_API_KEY\"\n",
        "let token = next_token(&mut lexer);\n",
        "password = make_password(raw, salt=None)\n",
        "if password == \"\":\n",
        "kwargs['password'] = 'password'\n",
        "token_pattern = r\"(?u)\\b\\w\\w+\\b\"\n",
        "csrf_token = \"{% csrf_token %}\"\n",
        "password_field = \"new_password1\"\n",
        "PASSWORD = \"${DB_PASSWORD}\"\n",
        "password: \"changeme\"\n",
        "secret = \"<your-secret-here>\"\n",
        "let header = \"-----BEGIN RSA PRIVATE KEY-----\";\n",
        "url = \"https://user@example.com/path\"\n",
        "DATABASE_URL = \"postgres://app:${PASSWORD}@db/app\"\n",
        "# Set the token with `quarry config`.\n",
        "    token = lexer.next_token()\n",
        "password_change_template = \"admin/password_change_form.html\"\n",
        "let mut tokens = \"tuple.0.0\".parse::<TokenStream>();\n",
        "token_type = \"Bearer9x\"\n",
    ] {
        let kind = TextKind::Code;
        assert_eq!(find(text, kind), Vec::new(), "false positive in {text:?}");
    }
    // An unquoted assignment is a variable in code, a value in data.
    let line = "password = hunter2pw\n";
    assert!(find(line, TextKind::Code).is_empty());
    assert_eq!(find(line, TextKind::Data).len(), 1);
}

#[test]
fn secret_files_by_name() {
    for name in [
        ".env",
        ".env.local",
        "server.pem",
        "tls.key",
        "id_rsa",
        "id_ed25519.pub",
        "credentials.json",
        "credentials",
        "aws_credentials",
        "secrets.yaml",
        "kubeconfig",
        "prod.kubeconfig",
        "terraform.tfstate",
        "terraform.tfstate.backup",
        ".netrc",
        "_netrc",
        ".npmrc",
        ".pypirc",
    ] {
        assert!(is_secret_file_name(name), "{name}");
    }
    for name in [
        "secret_manager.py",
        "keys.rs",
        "environment.py",
        "README.md",
        "credentials.rs",
        "secrets.py",
        "main.tf",
    ] {
        assert!(!is_secret_file_name(name), "{name}");
    }
}

#[test]
fn secret_files_by_content() {
    let service_account = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key\": \"{}\"\n}}\n",
        pem("").replace('\n', "\\n")
    );
    let cases = [
        ("keys/gcp.json", service_account),
        (
            "deploy/aws",
            "[default]\naws_access_key_id = X\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Jd3kPq9\n".to_string(),
        ),
        (
            "ops/config",
            "apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: u\n  user:\n    token: kubeT0kenAbCdEf12\n"
                .to_string(),
        ),
        (
            "docker/config.json",
            "{\"auths\": {\"r.example\": {\"auth\": \"dXNlcjpwYXNz\"}}}".to_string(),
        ),
        (
            "infra/state.json",
            "{\"version\": 4, \"terraform_version\": \"1.5.0\", \"lineage\": \"x\"}".to_string(),
        ),
        ("notes/key.txt", format!("{}\n", pem(""))),
        (
            "home/netrc.txt",
            "machine example.com\n  login me\n  password pw1\n".to_string(),
        ),
    ];
    for (path, text) in &cases {
        assert!(is_secret_content(path, text), "{path}");
    }
    // A key inside code is redacted, not a reason to drop the file.
    assert!(!is_secret_content(
        "app/keys.py",
        &format!("K = '''\n{}\n'''\n", pem(""))
    ));
    assert!(!is_secret_content(
        "README.md",
        "Use `kind: Config` in kubeconfigs.\n"
    ));
    // Prose that documents the formats is not a secret.
    let readme = "Skipped: a service-account key (`\"type\": \"service_account\"`), an AWS \
        credentials file (`aws_secret_access_key = ...`), Docker `\"auths\": {\"auth\": ...}`, \
        an npm `_authToken=` line, a Terraform state (`\"terraform_version\"`, `\"lineage\"`), \
        netrc `machine … password` lines.\n";
    assert!(!is_secret_content("README.md", readme));
}

#[test]
fn clean_text_is_borrowed_untouched() {
    let text = "def add(a, b):\n    return a + b\n";
    let redacted = redact(text, TextKind::Code);
    assert!(matches!(redacted.text, Cow::Borrowed(_)));
    assert!(redacted.counts.is_empty());
}

#[test]
fn an_edit_written_against_the_redacted_view_applies_to_the_real_text() {
    let token = format!("ghp_{}", "Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234567");
    let key = pem("    ");
    let original = format!(
        "TOKEN = \"{token}\"\nKEY = \"\"\"\n    {key}\n\"\"\"\n\ndef client():\n    return Client(TOKEN)\n"
    );
    let seen = redact(&original, TextKind::Code).text.into_owned();
    assert!(!seen.contains(&token));
    // The model renames TOKEN and keeps the secret it saw as a marker.
    let search = "TOKEN = \"«redacted: github-token»\"\n";
    let replace = "GITHUB_TOKEN = \"«redacted: github-token»\"\n";
    let (real_search, real_replace) =
        unredact_edit(&original, TextKind::Code, search, replace).expect("maps back");
    assert_eq!(real_search, format!("TOKEN = \"{token}\"\n"));
    assert_eq!(real_replace, format!("GITHUB_TOKEN = \"{token}\"\n"));
    // A multi-line key, its kept line breaks included.
    let at = seen.find("KEY = ").unwrap();
    let end = seen[at..].find("\n\n\"\"\"").map(|e| at + e).unwrap();
    let search = &seen[at..end];
    let (real_search, real_replace) = unredact_edit(
        &original,
        TextKind::Code,
        search,
        &search.replace("KEY", "SIGNING_KEY"),
    )
    .expect("maps back");
    assert!(original.contains(&real_search));
    assert!(real_replace.contains(&key) && real_replace.starts_with("SIGNING_KEY"));
    // No marker: nothing to do. A marker the SEARCH does not hold: refused.
    assert_eq!(
        unredact_edit(&original, TextKind::Code, "def client", "x"),
        None
    );
    assert_eq!(
        unredact_edit(
            &original,
            TextKind::Code,
            "def client():\n",
            "«redacted: stripe-key»"
        ),
        None
    );
}
