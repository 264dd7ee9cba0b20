# Static musl builds of modemd for the router targets; the top Makefile includes this file.
#
#   make cross-setup   install the toolchains and fill cross/build/ (as root; once per machine)
#   make cross         build dist/TRIPLE/modemd for each of CROSS_TARGETS
#   make size          their sizes, as a Markdown table
#   make cross-check   static, no INTERP, no FPU instruction on MIPS, mipsel size budget
#   make cross-smoke   run each under qemu-user: `modemd -V` (MIPS also on a FPU-less 24Kc)
#
# One target only:  make cross-setup cross cross-check CROSS_TARGETS=mipsel-unknown-linux-musl
# How and why: cross/setup.sh (toolchain choice) and cross/build.sh (flags).

CROSS_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS_TARGETS ?= x86_64-unknown-linux-musl armv7-unknown-linux-musleabihf \
	aarch64-unknown-linux-musl mipsel-unknown-linux-musl mips-unknown-linux-musl

.PHONY: cross-setup cross size cross-check cross-smoke

cross-setup:
	$(CROSS_DIR)/setup.sh $(CROSS_TARGETS)

cross:
	@set -e; for t in $(CROSS_TARGETS); do $(CROSS_DIR)/build.sh $$t; done

size:
	@$(CROSS_DIR)/size.sh

cross-check:
	@$(CROSS_DIR)/check.sh

cross-smoke:
	@$(CROSS_DIR)/smoke.sh
