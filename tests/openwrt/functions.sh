# Test stand-ins for the few OpenWrt shell functions /etc/init.d/modemd uses: the UCI
# readers of /lib/functions.sh and the procd helpers of /lib/functions/procd.sh. They
# mimic the real ones closely enough to run the init script's translation off a router;
# they are NOT OpenWrt's code. A UCI file is shell syntax once `config`, `option` and
# `list` are defined (OpenWrt's own config_load evaluates `uci export` the same way).
#
# UCI_DIR: where config_load finds its files.  PROCD_LOG: where procd calls are written.
# shellcheck disable=SC2034,SC3043 # variables are read through eval; ash has `local`

UCI_DIR=${UCI_DIR:-/etc/config}
PROCD_LOG=${PROCD_LOG:-/dev/null}
CONFIG_SECTIONS=""
CONFIG_SECTION=""
CONFIG_ANON=0

config() {
	if [ -n "$2" ]; then
		CONFIG_SECTION=$2
	else
		CONFIG_ANON=$((CONFIG_ANON + 1))
		CONFIG_SECTION="cfg$CONFIG_ANON"
	fi
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}

option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}

# List items are numbered, as OpenWrt keeps them: <option>_ITEM1.. and <option>_LENGTH.
list() {
	local _l_len
	eval "_l_len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	_l_len=$((_l_len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$_l_len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$_l_len"
}

config_load() {
	CONFIG_SECTIONS=""
	# shellcheck source=/dev/null
	. "$UCI_DIR/$1"
}

# Locals get private names: shell scoping is dynamic, and a caller's variable called
# `value` must not be shadowed.
config_get() {
	local _cg_value
	eval "_cg_value=\${CONFIG_$2_$3-}"
	eval "$1=\${_cg_value:-\$4}"
}

config_get_bool() {
	local _cgb_value
	config_get _cgb_value "$2" "$3" "$4"
	case "$_cgb_value" in
		1|on|true|yes|enabled) _cgb_value=1 ;;
		0|off|false|no|disabled) _cgb_value=0 ;;
		*) _cgb_value=$4 ;;
	esac
	eval "$1=\$_cgb_value"
}

config_foreach() {
	local _cf_fn=$1 _cf_type=$2 _cf_section _cf_t
	for _cf_section in $CONFIG_SECTIONS; do
		eval "_cf_t=\$CONFIG_${_cf_section}_TYPE"
		[ "$_cf_t" = "$_cf_type" ] && "$_cf_fn" "$_cf_section"
	done
	return 0
}

config_list_foreach() {
	local _cl_len _cl_i=1 _cl_item
	eval "_cl_len=\${CONFIG_$1_$2_LENGTH:-0}"
	while [ "$_cl_i" -le "$_cl_len" ]; do
		eval "_cl_item=\$CONFIG_$1_$2_ITEM$_cl_i"
		"$3" "$_cl_item"
		_cl_i=$((_cl_i + 1))
	done
	return 0
}

procd_open_instance() { echo "procd_open_instance $*" >> "$PROCD_LOG"; }
procd_set_param() { echo "procd_set_param $*" >> "$PROCD_LOG"; }
procd_close_instance() { echo "procd_close_instance" >> "$PROCD_LOG"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*" >> "$PROCD_LOG"; }
procd_send_signal() { echo "procd_send_signal $*" >> "$PROCD_LOG"; }
