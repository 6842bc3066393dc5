# Airlock policy library: composes every rule module into `data.airlock.decision`.
#
# Each module under `airlock.rules.<name>` exposes `decision` only when it applies to the
# request. This module collects them and picks one:
#   1. effect precedence: deny > approve > allow;
#   2. within the same effect, the higher risk wins (critical > high > medium > low);
#   3. then the rule name (alphabetical) so the choice is deterministic.
# When no module applies the call is denied (`default-deny`).
#
# Reads: only the modules' decisions. Data: none.
# Example: GET on a listed host that is also a Vault secret read → the hosts module
# allows, the secrets module asks for approval → `approve` / `secret-read`.
package airlock

import rego.v1

default decision := {
	"effect": "deny", "rule": "default-deny", "risk": "medium",
	"reason": "no policy rule allows this call",
}

# Add a line here for every new rule module.
candidates contains d if d := data.airlock.rules.hosts.decision
candidates contains d if d := data.airlock.rules.exports.decision
candidates contains d if d := data.airlock.rules.iam.decision
candidates contains d if d := data.airlock.rules.network.decision
candidates contains d if d := data.airlock.rules.secrets.decision
candidates contains d if d := data.airlock.rules.deploy.decision
candidates contains d if d := data.airlock.rules.databases.decision
candidates contains d if d := data.airlock.rules.mcp.decision
candidates contains d if d := data.airlock.rules.aws.decision

effect_rank := {"deny": 0, "approve": 1, "allow": 2}

risk_rank := {"critical": 0, "high": 1, "medium": 2, "low": 3}

decision := pick(candidates) if count(candidates) > 0

# The strictest of a set of decisions (a function, so tests can rank any set without
# replacing rules with `with`, which the filter's engine cannot do).
pick(decisions) := ranked[0][3] if {
	ranked := sort([[effect_rank[d.effect], risk_rank[d.risk], d.rule, d] | some d in decisions])
	count(ranked) > 0
}
