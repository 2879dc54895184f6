#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Mutex;

use super::*;

/// Records calls; fails the mount whose index is `fail_at`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    fail_at: Option<usize>,
}

impl Mounter for Recorder {
    fn mount(&self, call: &MountCall) -> io::Result<()> {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.iter().filter(|c| c.starts_with("mount")).count();
        calls.push(format!("mount {}", call.target.display()));
        if self.fail_at == Some(n) {
            return Err(io::Error::from_raw_os_error(libc_einval()));
        }
        Ok(())
    }
    fn unmount(&self, target: &Path, _detach: bool) -> io::Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("unmount {}", target.display()));
        Ok(())
    }
}

fn libc_einval() -> i32 {
    nix::errno::Errno::EINVAL as i32
}

fn mount(fs_type: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        fs_type: fs_type.into(),
        source: source.into(),
        target: None,
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn read_only_bind_is_bind_then_remount() {
    let calls = plan(&mount("bind", "/a", &["rbind", "ro"]), Path::new("/t")).unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    assert_eq!(calls[0].source.as_deref(), Some(Path::new("/a")));
    assert_eq!(
        calls[1].flags,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY
    );
}

#[test]
fn writable_bind_is_one_call() {
    let calls = plan(&mount("bind", "/a", &["rbind", "rw"]), Path::new("/t")).unwrap();
    assert_eq!(calls.len(), 1);
}

#[test]
fn short_overlay_options_pass_unchanged() {
    let m = mount(
        "overlay",
        "overlay",
        &[
            "lowerdir=/r/s/1/fs:/r/s/2/fs",
            "upperdir=/r/s/3/fs",
            "index=off",
        ],
    );
    let calls = plan(&m, Path::new("/t")).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cwd, None);
    assert_eq!(
        calls[0].data.as_deref(),
        Some("lowerdir=/r/s/1/fs:/r/s/2/fs,upperdir=/r/s/3/fs,index=off")
    );
}

#[test]
fn long_overlay_options_become_relative_with_a_cwd() {
    let root = "/var/lib/berth/a-rather-long-root-directory-name/snapshots";
    let lowers: Vec<String> = (1..=200).rev().map(|i| format!("{root}/{i}/fs")).collect();
    let opts = [
        format!("lowerdir={}", lowers.join(":")),
        format!("upperdir={root}/201/fs"),
        format!("workdir={root}/201/work"),
        "index=off".to_string(),
    ];
    let m = Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        target: None,
        options: opts.to_vec(),
    };
    let calls = plan(&m, Path::new("/t")).unwrap();
    assert_eq!(calls[0].cwd.as_deref(), Some(Path::new(root)));
    let data = calls[0].data.as_deref().unwrap();
    assert!(data.len() <= MOUNT_DATA_MAX);
    assert!(data.starts_with("lowerdir=200/fs:199/fs:"), "{data}");
    assert!(data.ends_with(",upperdir=201/fs,workdir=201/work,index=off"));
}

#[test]
fn hopelessly_long_options_are_an_error() {
    let lowers: Vec<String> = (0..900).map(|i| format!("/r/{i:08}/fs")).collect();
    let m = Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        target: None,
        options: vec![format!("lowerdir={}", lowers.join(":"))],
    };
    assert!(matches!(
        plan(&m, Path::new("/t")),
        Err(MountError::OptionsTooLong { .. })
    ));
}

#[test]
fn failed_mount_rolls_back_earlier_ones() {
    let rec = Recorder {
        fail_at: Some(1),
        ..Default::default()
    };
    let mut second = mount("bind", "/b", &["rbind"]);
    second.target = Some("sub".into());
    let r = mount_all_with(
        &rec,
        &[mount("bind", "/a", &["rbind"]), second],
        Path::new("/t"),
    );
    assert!(matches!(r, Err(MountError::Mount { .. })));
    assert_eq!(
        *rec.calls.lock().unwrap(),
        vec!["mount /t", "mount /t/sub", "unmount /t"]
    );
}
