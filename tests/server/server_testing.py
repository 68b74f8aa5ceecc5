"""Settings of the test server that the server tests and their fixtures share (not in conftest.py: several
folders have a conftest.py, and only one module can be imported under that name)."""

WORKERS = 2
MAX_QUEUE = 2
MAX_TEXT_CHARACTERS = 600
START_TIMEOUT_S = 240
#: Several sentences: about 10 s of audio, so that synthesis takes seconds and a stream has many chunks.
LONG_FRENCH = (
    "Bonjour à tous, et bienvenue dans notre petite ville au bord de la mer. "
    "Le marché ouvre tous les matins à huit heures, sauf le dimanche. "
    "Vous y trouverez des fruits, des légumes, du poisson frais et du bon pain. "
    "Le soir, les habitants se promènent longuement sur la plage avec leurs enfants. "
    "Nous espérons que votre séjour sera agréable et que vous reviendrez bientôt."
)
