"""The code of every logged recsys pyfunc model (MLflow's "models from code").

MLflow keeps this file beside the model and runs it to load the model: the wrapper is built
here, not unpickled, and :meth:`RecommenderPyfunc.load_context` reads the saved state (no
pickle either). Nothing else belongs in this file.
"""

from mlflow.models import set_model

from recsys_core.tracking.pyfunc import RecommenderPyfunc

set_model(RecommenderPyfunc())
