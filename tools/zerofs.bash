# tools/zerofs.bash - bash completion of the zerofs command
#
# make install puts it where bash-completion loads it on demand:
# <datadir>/bash-completion/completions/zerofs. Without bash-completion,
# source it from ~/.bashrc. Commands and options follow 'zerofs --help' and
# each command's --help (tests/e2e/24-help.sh checks the command list).

_zerofs_commands="mkfs mount umount sync stats fsck gc lease-break passwd snapshot pin unpin warmup evict status config version help"
_zerofs_mount_opts="remote= cache_size= fetch_timeout= write_wait= max_delay= merge_after= commit= timeout= ckpt= mem= nonempty log= log_level= metrics_file= metrics_interval= replica= poll= snapshot= allow_other ro"

_zerofs_mountpoints() {
	awk '$3 == "fuse.zerofs" { print $2 }' /proc/self/mounts 2>/dev/null
}

_zerofs() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd=${COMP_WORDS[1]:-} opts="--help" head
	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$_zerofs_commands --help --version" -- "$cur"))
		return 0
	fi
	case $cmd in
	mkfs) opts="--force --zstd-level --remote --no-check --encrypt --restore --allow-loss --verify-data --help" ;;
	mount) opts="-f --foreground -d --debug -o --cache-size --replica --snapshot --help" ;;
	umount | unmount | sync) opts="--timeout --help" ;;
	stats) opts="--bytes --json --prometheus --help" ;;
	fsck) opts="--verify-data --repair -q --quiet --help" ;;
	gc) opts="-n --dry-run -w --max-waste --help" ;;
	lease-break) opts="-f --force --help" ;;
	passwd) opts="--help" ;;
	snapshot) opts="create delete list --help" ;;
	status) opts="-b --help" ;;
	help)
		COMPREPLY=($(compgen -W "$_zerofs_commands" -- "$cur"))
		return 0
		;;
	esac
	case $prev in
	-o)
		# one option of a comma-separated list: complete the last
		head=""
		[[ $cur == *,* ]] && head=${cur%,*},
		COMPREPLY=($(compgen -P "$head" -W "$_zerofs_mount_opts" -- "${cur##*,}"))
		compopt -o nospace 2>/dev/null
		return 0
		;;
	--remote | --restore)
		COMPREPLY=($(compgen -W "file:/// s3:// none" -- "$cur"))
		compopt -o nospace 2>/dev/null
		return 0
		;;
	--zstd-level | --timeout | --max-waste | -w | --cache-size | --replica | --snapshot)
		return 0
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return 0
	fi
	case $cmd in
	umount | unmount | sync)
		COMPREPLY=($(compgen -W "$(_zerofs_mountpoints)" -- "$cur"))
		;;
	lease-break | version | config) ;;
	pin | unpin | warmup | evict | status)
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	*)
		COMPREPLY=($(compgen -d -- "$cur"))
		;;
	esac
	return 0
}

complete -F _zerofs zerofs
