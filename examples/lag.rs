use voicesim::audio::Clip;
fn main() {
    for (from, to) in [(48000u32, 8000u32), (8000, 48000), (8000, 22050), (22050, 8000), (16000, 8000), (44100, 8000), (24000, 16000), (44100, 48000), (48000, 22050)] {
        let f = 1000.0f64;
        let s: Vec<f32> = (0..from as usize).map(|i| (i as f64 * f * std::f64::consts::TAU / from as f64).sin() as f32 * 0.5).collect();
        let out = Clip::new(s, from).resample(to).unwrap();
        let (mut i_, mut q_) = (0.0, 0.0);
        for k in (to as usize / 10)..(to as usize * 9 / 10) {
            let t = k as f64 / to as f64 * f * std::f64::consts::TAU;
            i_ += out.samples[k] as f64 * t.sin(); q_ += out.samples[k] as f64 * t.cos();
        }
        let phase = q_.atan2(i_);
        println!("{from}->{to}: delay {:.3} output samples", -phase / (f * std::f64::consts::TAU) * to as f64);
    }
}
