"""CDISC ODM 1.3.2 XML of the clinical data (built with odmlib): the metadata (an
ItemGroupDef per patient-linked table, an ItemDef per field with its ODM DataType and, as
its Question, the label people read from `startrt.fields`) and a
SubjectData per visible patient (SubjectKey = trial ID), one StudyEventData/FormData/
ItemGroupData per row. Source: CDISC, Specification for the Operational Data Model (ODM)
Version 1.3.2, 2013."""

from __future__ import annotations

import re
import uuid
from typing import Any

import odmlib.ns_registry as odm_namespaces
import odmlib.odm_1_3_2.model as odm
from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.utils import timezone

from startrt import __version__, fields
from startrt.protocol.definition import Protocol, default_protocol
from startrt.validation import InvalidInputError
from startrt.web.exports.tables import (
    TRIAL_ID,
    Table,
    consistent_snapshot,
    require_export_role,
    rows,
    trial_tables,
)
from startrt.web.trial.permissions import visible_patients

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
_NAMESPACES = {"namespaces": {"odm": ODM_NAMESPACE}, "default": {"odm": ODM_NAMESPACE}}
# ODM 1.3.2 DataType of each Django field type (get_internal_type); any other type is text
DATA_TYPES = {
    **dict.fromkeys(
        (
            "AutoField",
            "BigAutoField",
            "SmallAutoField",
            "IntegerField",
            "BigIntegerField",
            "SmallIntegerField",
            "PositiveIntegerField",
            "PositiveBigIntegerField",
            "PositiveSmallIntegerField",
        ),
        "integer",
    ),
    "FloatField": "double",
    "DecimalField": "float",
    "BooleanField": "boolean",
    "DateField": "date",
    "DateTimeField": "datetime",
    "TimeField": "time",
    "DurationField": "durationDatetime",
    "BinaryField": "hexBinary",
}
# characters XML 1.0 cannot carry, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def export_odm(user: AbstractBaseUser) -> bytes:
    """The clinical data of the patients the user may see as an ODM 1.3.2 Snapshot (UTF-8)."""
    require_export_role(user)
    protocol = default_protocol()
    now = timezone.now()
    root = odm.ODM(
        FileOID=f"F.{protocol.id}.{now:%Y%m%dT%H%M%SZ}.{uuid.uuid4().hex[:8]}",
        FileType="Snapshot",
        Granularity="All",
        CreationDateTime=now.isoformat(),
        AsOfDateTime=now.isoformat(),
        ODMVersion="1.3.2",
        Originator=protocol.label,
        SourceSystem="startrt",
        SourceSystemVersion=__version__,
    )
    with consistent_snapshot():
        tables = [table for table in trial_tables(user) if table.patient_path is not None]
        root.Study.append(_study(protocol, tables))
        root.ClinicalData.append(_clinical_data(protocol, tables, user))
    # serialize in the ODM namespace whatever odmlib's process-wide registry holds
    odm_namespaces.bind_document_namespaces(root, snapshot=_NAMESPACES)  # type: ignore[no-untyped-call]
    xml: str = root.to_xml_string(xml_declaration=True)
    return xml.encode("utf-8")


def study_oid(protocol: Protocol) -> str:
    return f"ST.{protocol.id}"


def metadata_version_oid(protocol: Protocol) -> str:
    return f"MDV.{protocol.id}.{protocol.version}"


def _key(table: Table) -> str:
    return str(table.model._meta.label_lower).upper()  # TRIAL.SCREENING


def item_oid(table: Table, field: models.Field[Any, Any]) -> str:
    return f"IT.{_key(table)}.{field.attname.upper()}"


def _study(protocol: Protocol, tables: list[Table]) -> Any:
    variables = odm.GlobalVariables(
        StudyName=odm.StudyName(_content=protocol.id),
        StudyDescription=odm.StudyDescription(_content=protocol.title),
        ProtocolName=odm.ProtocolName(_content=protocol.label),
    )
    version = odm.MetaDataVersion(
        OID=metadata_version_oid(protocol), Name=f"{protocol.label} database"
    )
    version.Protocol = odm.Protocol(
        StudyEventRef=[
            odm.StudyEventRef(StudyEventOID=f"SE.{_key(table)}", OrderNumber=n, Mandatory="No")
            for n, table in enumerate(tables, start=1)
        ]
    )
    for table in tables:
        name = str(table.model._meta.verbose_name)
        version.StudyEventDef.append(
            odm.StudyEventDef(
                OID=f"SE.{_key(table)}",
                Name=name,
                Repeating="Yes",
                Type="Common",
                FormRef=[odm.FormRef(FormOID=f"F.{_key(table)}", Mandatory="Yes")],
            )
        )
        version.FormDef.append(
            odm.FormDef(
                OID=f"F.{_key(table)}",
                Name=name,
                Repeating="No",
                ItemGroupRef=[odm.ItemGroupRef(ItemGroupOID=f"IG.{_key(table)}", Mandatory="Yes")],
            )
        )
    for table in tables:
        version.ItemGroupDef.append(_item_group_def(table))
    for table in tables:
        version.ItemDef.extend(_item_def(table, field) for field in table.fields)
    return odm.Study(OID=study_oid(protocol), GlobalVariables=variables, MetaDataVersion=[version])


def _item_group_def(table: Table) -> Any:
    return odm.ItemGroupDef(
        OID=f"IG.{_key(table)}",
        Name=table.name,
        Repeating="No",
        ItemRef=[
            odm.ItemRef(
                ItemOID=item_oid(table, field),
                OrderNumber=n,
                Mandatory="No" if field.null or field.blank else "Yes",
                **({"KeySequence": 1} if field.primary_key else {}),
            )
            for n, field in enumerate(table.fields, start=1)
        ],
    )


def _item_def(table: Table, field: models.Field[Any, Any]) -> Any:
    stored = field.target_field if field.is_relation else field  # foreign keys hold ids
    attributes: dict[str, Any] = {}
    if isinstance(stored, models.CharField) and stored.max_length:
        attributes["Length"] = stored.max_length
    if isinstance(stored, models.DecimalField):
        attributes["SignificantDigits"] = stored.decimal_places
    label = odm.TranslatedText(_content=fields.label(field.attname), lang="en")
    return odm.ItemDef(
        OID=item_oid(table, field),
        Name=field.attname,  # the machine name: the data contract
        DataType=DATA_TYPES.get(stored.get_internal_type(), "text"),
        Question=odm.Question(TranslatedText=[label]),  # the label people read
        **attributes,
    )


def _clinical_data(protocol: Protocol, tables: list[Table], user: AbstractBaseUser) -> Any:
    trial_ids = visible_patients(user).order_by(TRIAL_ID).values_list(TRIAL_ID, flat=True)
    events: dict[str, list[Any]] = {trial_id: [] for trial_id in trial_ids}
    for table in tables:
        for row in rows(table, user):
            trial_id = row[TRIAL_ID]
            if trial_id is not None:
                subject = events[trial_id]
                subject.append(_event(table, row, len(subject) + 1))
    return odm.ClinicalData(
        StudyOID=study_oid(protocol),
        MetaDataVersionOID=metadata_version_oid(protocol),
        SubjectData=[
            odm.SubjectData(SubjectKey=trial_id, StudyEventData=subject_events)
            for trial_id, subject_events in events.items()
        ],
    )


def _event(table: Table, row: dict[str, str | None], number: int) -> Any:
    """The row as a study event, repeated by the row's id or, where the id is not exported (a
    slot, to anyone but the statistician), by its `number` among the subject's events."""
    items = [
        odm.ItemData(ItemOID=item_oid(table, field), Value=_xml_text(table, field, value))
        for field in table.fields
        if (value := row[field.attname]) is not None
    ]
    group = odm.ItemGroupData(ItemGroupOID=f"IG.{_key(table)}", ItemData=items)
    form = odm.FormData(FormOID=f"F.{_key(table)}", ItemGroupData=[group])
    return odm.StudyEventData(
        StudyEventOID=f"SE.{_key(table)}",
        StudyEventRepeatKey=row.get(table.model._meta.pk.attname) or str(number),
        FormData=[form],
    )


def _xml_text(table: Table, field: models.Field[Any, Any], value: str) -> str:
    if _NOT_XML.search(value):
        raise InvalidInputError(
            f"{table.name}.{field.attname}", value, "holds a character XML 1.0 cannot carry"
        )
    return value
