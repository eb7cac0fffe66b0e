-- jabmon on Prosody 0.12: a file for /etc/prosody/conf.d/ (Debian's prosody.cfg.lua ends with
-- Include "conf.d/*.cfg.lua"). Replace example.org with your domain and list the hub and
-- every collector below; then `prosodyctl reload`. docs/operations.md says why each line is
-- here. tests/tests/stock.rs starts Debian's own prosody.cfg.lua with this file.

-- Debian's file limits what each client sends (limits = { c2s = { rate = "10kb/s" } }): the
-- hub's event messages to users and the collectors' stats items would wait behind it.
unlimited_jids = {
    "hub@example.org";
    "web1@example.org";
}

-- Small IQ round trips without waiting for delayed ACKs (0.3 ms instead of a 48 ms p95).
network_settings = { nagle = false }

-- What the bots use, loaded on their host in addition to the global modules_enabled:
-- adhoc lets console clients (Profanity's /cmd) find the bots' commands.
VirtualHost "example.org"
    modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "pep"; "smacks"; "ping"; "adhoc"; "version" }
