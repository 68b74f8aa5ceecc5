"""Train the MLMS acoustic model on a prepared dataset with plain `model.fit`.

mlms corpus build data/teacher --preset tiny
mlms prepare data/teacher data/prepared --f0-method dio
python examples/train_mlms.py data/prepared --epochs 2
"""

import argparse

import keras

from mlms_keras.data import Manifest, load_dataset
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model
from mlms_keras.training.callbacks import AcousticMetricsCallback

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("dataset", help="folder written by `mlms prepare`")
parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "paper"])
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=8)
args = parser.parse_args()

info = Manifest.load(args.dataset)  # feature size, language/speaker tables, normalisation statistics
train = load_dataset(args.dataset, "train", args.batch_size, seed=0)
dev = load_dataset(args.dataset, "dev", args.batch_size)
dev_scored = load_dataset(args.dataset, "dev", args.batch_size, frame_mask="speech")  # metrics without silence

config = MLMSConfig.preset(
    args.preset, input_dim=info.input_dim, num_languages=info.num_languages, num_speakers=info.num_speakers
)
model = build_mlms_model(config)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
metrics = AcousticMetricsCallback(dev_scored, info.output_mean, info.output_std)
model.fit(train, validation_data=dev, epochs=args.epochs, callbacks=[metrics])
