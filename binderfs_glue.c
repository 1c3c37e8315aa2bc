// SPDX-License-Identifier: GPL-2.0
/*
 * The part of binderfs that cannot be written in Rust: the mount API.
 *
 * `<linux/fs_context.h>` and `<linux/fs_parser.h>` are not in the kernel's Rust bindings, so
 * the filesystem type, its parameter table, the fs_context operations (parsing `max=` and
 * `stats=`, remounting, get_tree_nodev) and the superblock's first settings live here. Also
 * here: the IPC namespace reference a mount holds and the mounter's root ids in the new
 * superblock's user namespace, whose helpers are inline functions missing from the bindings.
 *
 * Everything else (the root directory, binder-control, the devices, features/, binder_logs/,
 * inode eviction) is in binderfs.rs, called through the rb_binderfs_* functions declared below.
 */

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/ipc_namespace.h>
#include <linux/kdev_t.h>
#include <linux/magic.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

/* What a mount asks for, and what binderfs.rs needs to know of the superblock's owner. */
struct rb_binderfs_mount {
	u32 max;
	bool stats_global;
	kuid_t root_uid;
	kgid_t root_gid;
	/* The mount belongs to the initial IPC namespace (which keeps four minors in reserve). */
	bool init_ipc_ns;
	/* A counted reference to the mounter's IPC namespace, for rb_binderfs_put_ipc_ns. */
	void *ipc_ns;
};

/* Called from binderfs.rs. */
struct file_system_type *rb_binderfs_fs_type(void);
void rb_binderfs_put_ipc_ns(void *ipc_ns);

/* In binderfs.rs. */
int rb_binderfs_fill_super(struct super_block *sb, const struct rb_binderfs_mount *mount);
bool rb_binderfs_stats_global(struct super_block *sb);
void rb_binderfs_set_max(struct super_block *sb, u32 max);
void rb_binderfs_free_info(struct super_block *sb);

/* Mirrors BINDERFS_MAX_MINOR: every minor number a binderfs device can have. */
#define RB_BINDERFS_MINORS (1U << MINORBITS)

enum { RB_OPT_MAX, RB_OPT_STATS };

static const struct constant_table rb_stats_values[] = {
	{ "global", 1 },
	{}
};

static const struct fs_parameter_spec rb_binderfs_params[] = {
	fsparam_u32("max", RB_OPT_MAX),
	fsparam_enum("stats", RB_OPT_STATS, rb_stats_values),
	{}
};

/* The options of one mount or remount request, in fc->fs_private. */
struct rb_binderfs_opts {
	u32 max;
	bool stats_global;
};

static int rb_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	struct rb_binderfs_opts *opts = fc->fs_private;
	struct fs_parse_result result;
	int opt = fs_parse(fc, rb_binderfs_params, param, &result);

	if (opt < 0)
		return opt;
	if (opt == RB_OPT_MAX) {
		if (result.uint_32 > RB_BINDERFS_MINORS)
			return invalfc(fc, "Bad value for '%s'", param->key);
		opts->max = result.uint_32;
		return 0;
	}
	/* Global statistics show every process: only the initial namespace's admin asks. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	opts->stats_global = true;
	return 0;
}

static int rb_reconfigure(struct fs_context *fc)
{
	struct rb_binderfs_opts *opts = fc->fs_private;
	struct super_block *sb = fc->root->d_sb;

	if (rb_binderfs_stats_global(sb) != opts->stats_global)
		return invalfc(fc, "Binderfs stats mode cannot be changed during a remount");
	rb_binderfs_set_max(sb, opts->max);
	return 0;
}

static int rb_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct rb_binderfs_opts *opts = fc->fs_private;
	struct ipc_namespace *ipc_ns = current->nsproxy->ipc_ns;
	struct rb_binderfs_mount mount = {
		.max = opts->max,
		.stats_global = opts->stats_global,
		.root_uid = make_kuid(sb->s_user_ns, 0),
		.root_gid = make_kgid(sb->s_user_ns, 0),
	};

#ifdef CONFIG_IPC_NS
	mount.init_ipc_ns = ipc_ns == &init_ipc_ns;
#else
	/* There is only the one IPC namespace. */
	mount.init_ipc_ns = true;
#endif

	if (!uid_valid(mount.root_uid))
		mount.root_uid = GLOBAL_ROOT_UID;
	if (!gid_valid(mount.root_gid))
		mount.root_gid = GLOBAL_ROOT_GID;

	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = BINDERFS_SUPER_MAGIC;
	sb->s_time_gran = 1;
	/*
	 * A user namespace's mounts are SB_I_NODEV, so that its root cannot mknod its way to
	 * arbitrary devices. Nobody can mknod in binderfs, and its only devices are the binder
	 * devices binder-control makes, which that root may have: they must open.
	 */
	sb->s_iflags &= ~SB_I_NODEV;
	sb->s_iflags |= SB_I_NOEXEC;

	mount.ipc_ns = get_ipc_ns(ipc_ns);
	return rb_binderfs_fill_super(sb, &mount);
}

static int rb_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, rb_fill_super);
}

static void rb_free_fc(struct fs_context *fc)
{
	kfree(fc->fs_private);
}

static const struct fs_context_operations rb_binderfs_context_ops = {
	.parse_param = rb_parse_param,
	.get_tree = rb_get_tree,
	.reconfigure = rb_reconfigure,
	.free = rb_free_fc,
};

static int rb_init_fs_context(struct fs_context *fc)
{
	struct rb_binderfs_opts *opts = kzalloc(sizeof(*opts), GFP_KERNEL);

	if (!opts)
		return -ENOMEM;
	opts->max = RB_BINDERFS_MINORS;
	fc->fs_private = opts;
	fc->ops = &rb_binderfs_context_ops;
	return 0;
}

static void rb_kill_sb(struct super_block *sb)
{
	/* Evicting the inodes still needs the mount's state: free it only afterwards. */
	kill_anon_super(sb);
	rb_binderfs_free_info(sb);
}

static struct file_system_type rb_binderfs_type = {
	.owner = THIS_MODULE,
	.name = "binder",
	.init_fs_context = rb_init_fs_context,
	.parameters = rb_binderfs_params,
	.kill_sb = rb_kill_sb,
	.fs_flags = FS_USERNS_MOUNT,
};

/* The filesystem type, for binderfs.rs to register. */
struct file_system_type *rb_binderfs_fs_type(void)
{
	return &rb_binderfs_type;
}

/* Drops the IPC namespace reference of a mount (rb_binderfs_mount.ipc_ns). */
void rb_binderfs_put_ipc_ns(void *ipc_ns)
{
	put_ipc_ns(ipc_ns);
}
