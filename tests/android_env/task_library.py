"""Runs INSIDE the isolated tflite-support venv (see venv.py); imports only tflite_support and the stdlib.

Each command prints one JSON object on stdout:
  classify MODEL IMAGE...          the Task Library's ImageClassifier on each image file (all categories)
  display MODEL                    MetadataDisplayer: the metadata as JSON, the packed files and their text
  populate MODEL METADATA FILE OUT tflite-support's own MetadataPopulator: MODEL + metadata buffer + FILE -> OUT
  schema                           where tflite-support keeps the metadata schema (.fbs and generated .py)
"""
import json
import os
import sys


def classify(model, *images):
    from tflite_support.task import core, processor, vision

    options = vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=model, num_threads=1),
        classification_options=processor.ClassificationOptions(max_results=-1))
    classifier = vision.ImageClassifier.create_from_options(options)
    results = []
    for image in images:
        categories = classifier.classify(vision.TensorImage.create_from_file(image)).classifications[0].categories
        results.append([{"index": c.index, "label": c.category_name, "score": c.score} for c in categories])
    return {"results": results}


def display(model):
    from tflite_support import metadata

    displayer = metadata.MetadataDisplayer.with_model_file(model)
    files = displayer.get_packed_associated_file_list()
    return {"metadata": json.loads(displayer.get_metadata_json()), "packed_files": files,
            "files": {name: displayer.get_associated_file_buffer(name).decode() for name in files}}


def populate(model, metadata_file, associated_file, out):
    from tflite_support import metadata

    with open(model, "rb") as f:
        populator = metadata.MetadataPopulator.with_model_buffer(f.read())
    with open(metadata_file, "rb") as f:
        populator.load_metadata_buffer(f.read())
    with open(associated_file, "rb") as f:
        populator.load_associated_file_buffers({os.path.basename(associated_file): f.read()})
    populator.populate()
    with open(out, "wb") as f:
        f.write(populator.get_model_buffer())
    return {"written": out}


def schema():
    import tensorflow_lite_support.metadata as package

    folder = os.path.dirname(package.__file__)
    return {"fbs": os.path.join(folder, "metadata_schema.fbs"),
            "py": os.path.join(folder, "metadata_schema_py_generated.py")}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    print(json.dumps({"classify": classify, "display": display, "populate": populate, "schema": schema}[command](*args)))
