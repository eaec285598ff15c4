# Shared by the functions that read the principal registry (reconcile, health, revoke, restore,
# rotate_secret: for the channel its messages carry).
#
# `sam build` (Metadata BuildMethod: makefile) runs `make --makefile <functions/NAME/Makefile>
# build-<Logical>Function` from a scratch copy of the folder, so the repository is found from the
# including Makefile's own location. The recipe ships the handler code plus teams.yaml (reviewed in
# git, read through TOKENWARDEN_REGISTRY_PATH); dependencies come from the shared layer.

HERE      := $(patsubst %/,%,$(dir $(realpath $(firstword $(MAKEFILE_LIST)))))
REPO_ROOT := $(realpath $(HERE)/../..)
REGISTRY  := $(REPO_ROOT)/teams.yaml

define ship-with-registry
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (run through sam build)" >&2; exit 1; }
	@test -f "$(REGISTRY)" || { echo "registry $(REGISTRY) not found: $@ needs it" >&2; exit 1; }
	cd "$(HERE)" && find . -name __pycache__ -prune -o -type f ! -name Makefile ! -name '*.pyc' -print \
		| while read -r file; do install -D -m 0644 "$$file" "$(ARTIFACTS_DIR)/$$file"; done
	install -m 0644 "$(REGISTRY)" "$(ARTIFACTS_DIR)/teams.yaml"
endef
